"""Bounces without a delivery-status part: is it a bounce at all, and who failed.

The message must look like a bounce (a mail-system sender, ``X-Failed-Recipients``, known
wording, or a bounce subject with a null return path) and must not be an auto-reply; then
the human-readable text, cut where the copy of the original begins, is searched for
addresses and the evidence that follows each. Anything uncertain yields no recipient.
"""

from __future__ import annotations

import re
from email.message import Message
from email.utils import getaddresses

from subscribe.refusals import Action, action_for, reason_for, reason_in_words

from .evidence import (
    BouncedRecipient,
    BounceKind,
    Evidence,
    find_evidence,
    has_permanent_code,
    unique_by_address,
)
from .mime import (
    ADDRESS_PATTERN,
    addresses_in,
    decoded_header,
    diagnostic_line,
    line_start,
    normalize_address,
)

_CONTEXT_MAX = 1000  # characters of text after an address searched for its evidence

_CONTEXTS_MAX = 8  # occurrences of one address whose contexts are searched

_MAIL_SYSTEM_LOCALS = frozenset(
    {"mailer-daemon", "mailer_daemon", "mailerdaemon", "mail-daemon", "postmaster", "mdaemon"}
)

# Exchange's own sender: MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@...
_EXCHANGE_SYSTEM = re.compile(r"microsoftexchange[0-9a-f]{32}", re.IGNORECASE)

_DELAY_NOTICE = re.compile(
    r"has not yet been delivered|not been delivered yet|delivery (?:has been|is) delayed|"
    r"will (?:continue to )?(?:re)?try|still being retried|delayed mail|"
    r"warning: message \S{1,100} delayed|delivery status notification \(delay\)|"
    r"delivery delay(?:ed)?\b|will keep trying|message still undelivered after|"
    r"transient delivery errors|temporary delivery failure notice|"
    r"could not send message for past|this is a warning message only|"
    # the same in the languages mail systems localise their notices into
    r"verz(?:ö|oe)ger|noch nicht zugestellt|retard[ée]e?|diff[ée]r[ée]e|pas encore [ée]t[ée] remis|"
    r"ritardat|non [èe] (?:stato )?ancora (?:stato )?consegnato|retrasad|atrasad|"
    r"ainda n[ãa]o foi entregue|todav[íi]a no (?:ha sido|se ha) entregad|"
    r"vertraagd|op[óo][źz]nion|задерживается|задержк|延迟|延遲|遅延|지연",
    re.IGNORECASE,
)

_BOUNCE_SUBJECT = re.compile(
    r"^\s*(?:undeliver|undelivered mail|mail delivery fail|delivery (?:status notification|"
    r"failure|failed|notification)|returned mail|failure notice|non[- ]?delivery|"
    r"delivery has failed|mail system error|warning: message \S{1,100} delayed|delayed mail|"
    r"unzustellbar|non remis|non recapitabile|onbestelbaar|olevererbart|n[ãa]o entregue|"
    r"no se puede entregar|mensaje no entregado|unzustellbare|zustellung fehlgeschlagen|"
    r"недоставленное|письмо не доставлено|退信|邮件投递失败|配信エラー|メール配送失敗|"
    r"메일 발송 실패|messaggio non consegnato|mensagem n[ãa]o entregue)",
    re.IGNORECASE,
)

_BOUNCE_BODY = re.compile(
    r"this is the qmail-send program|created automatically by mail delivery software|"
    r"the following address\(es\) failed|delivery has failed to these recipients|"
    r"unable to deliver your message to the following address|"
    r"delivery to the following recipients? failed|this is the mail system at host|"
    r"your message (?:to \S{1,254} )?couldn'?t be delivered|i'?m afraid i wasn'?t able to deliver|"
    r"permanent fatal (?:delivery )?errors",
    re.IGNORECASE,
)

_AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*(?:out of (?:the )?office|automatic reply|auto(?:matic)?[- ]?(?:reply|response)|"
    r"auto:|autoreply|away from (?:the )?office|on vacation|vacation reply|abwesenheit|"
    r"automatische antwort|r[ée]ponse automatique|absence du bureau|respuesta autom[áa]tica|"
    r"fuera de la oficina|risposta automatica|fuori sede|resposta autom[áa]tica|"
    r"automatisch antwoord|afwezig|автоответ|автоматический ответ|自动回复|自動回覆|不在通知|"
    r"自動応答|자동 ?응답|부재중)",
    re.IGNORECASE,
)

# Where the copy of the original message starts inside the human-readable text.
_ORIGINAL_STARTS = re.compile(
    r"^[ \t]{0,40}(?:-{1,80}[ \t]{0,40}(?:this is a copy of|below this line is a copy|"
    r"original message|forwarded message|the (?:header|body|headers) of|a copy of the original)"
    r"|original message headers:|(?:return-path|received|dkim-signature|message-id):"
    # the same separators as localised mail systems write them
    r"|-{0,80}[ \t]{0,40}(?:der kopf der urspr|urspr(?:ü|ue)ngliche nachricht|original-nachricht|"
    r"en-t[êe]tes? (?:de|du) message d'origine|message d'origine|messaggio originale|"
    r"intestazioni originali|mensaje original|mensagem original|исходное сообщение|"
    r"原邮件|原始邮件|元のメッセージ|원본 메시지))",
    re.IGNORECASE | re.MULTILINE,
)


def text_recipients(
    msg: Message, text: str, originals: list[Message], bounce_address: str
) -> list[BouncedRecipient]:
    """Heuristics for bounces without a DSN part: failed addresses and the evidence after them."""
    if not _looks_like_bounce(msg, text):
        return []
    if _is_auto_reply(msg) and not _from_mail_system(msg):
        return []
    report = before_original(text)
    failed = [
        a
        for a in map(normalize_address, addresses_in(decoded_header(msg, "X-Failed-Recipients")))
        if a
    ]
    contexts = _address_contexts(report, _excluded_addresses(msg, originals, bounce_address))
    candidates = failed or list(contexts) or [""]
    # A delay warning says the mail system is still trying: nothing has bounced yet. A
    # permanent code says otherwise ("delayed, then refused: 550 5.1.1 ..."): a failure.
    delay = _DELAY_NOTICE.search(f"{decoded_header(msg, 'Subject')}\n{report}")
    if delay and not has_permanent_code(report):
        return []
    # Text anywhere in the report vouches for a recipient only when there is no one else it
    # could be about: the mail system listed the failed addresses, or there is one address.
    sole = bool(failed) or len(candidates) == 1
    fallback = find_evidence(report) if sole else None
    by_key = {address.lower(): context for address, context in contexts.items()}
    recipients: list[BouncedRecipient] = []
    for address in candidates:
        context = by_key.get(address.lower(), "")
        found = find_evidence(context) or fallback
        found = found or _words_evidence(context or (report if sole else ""))
        if found is not None:
            reason = reason_for(found.status, context, more_text=report if sole else "")
            recipients.append(
                BouncedRecipient(address, found.kind, found.status, found.diagnostic, reason)
            )
    return unique_by_address(recipients)


def _words_evidence(context: str) -> Evidence | None:
    """Evidence from words alone, for mail systems that give neither status nor reply code
    (Domino, X.400 gateways, Japanese carriers). Only a context after an address is read,
    and only once the message is known to come from a mail system."""
    found = reason_in_words(context)
    if found is None:
        return None
    reason, match = found
    kind = BounceKind.HARD if action_for(reason) == Action.REMOVE else BounceKind.SOFT
    return Evidence(kind, "", diagnostic_line(context[line_start(context, match.start()) :]))


def _looks_like_bounce(msg: Message, text: str) -> bool:
    """A mail-system sender or wording; a bounce subject alone needs a null return path too."""
    return (
        _from_mail_system(msg)
        or bool(decoded_header(msg, "X-Failed-Recipients"))
        or bool(_BOUNCE_BODY.search(text))
        or (
            bool(_BOUNCE_SUBJECT.search(decoded_header(msg, "Subject")))
            and decoded_header(msg, "Return-Path").replace(" ", "") == "<>"
        )
    )


def _from_mail_system(msg: Message) -> bool:
    for name, address in getaddresses([decoded_header(msg, "From"), decoded_header(msg, "Sender")]):
        local = address.rpartition("@")[0] or address
        if local.lower() in _MAIL_SYSTEM_LOCALS or _EXCHANGE_SYSTEM.fullmatch(local):
            return True
        if re.search(r"mail delivery (?:system|subsystem)|mailer-daemon", name, re.I):
            return True
    return False


def _is_auto_reply(msg: Message) -> bool:
    auto_submitted = decoded_header(msg, "Auto-Submitted").strip().lower()
    precedence = decoded_header(msg, "Precedence").strip().lower()
    return (
        auto_submitted.startswith("auto-replied")
        or precedence == "auto_reply"
        or any(decoded_header(msg, h) for h in ("X-Autoreply", "X-Autorespond"))
        or bool(_AUTO_REPLY_SUBJECT.search(decoded_header(msg, "Subject")))
    )


def before_original(text: str) -> str:
    start = _ORIGINAL_STARTS.search(text)
    return text[: start.start()] if start else text


def _address_contexts(text: str, excluded: set[str]) -> dict[str, str]:
    """Map each address in ``text`` (as first written) to the text following its occurrences.

    Addresses compare case-insensitively. A context starts at the beginning of the line
    holding the address (codes may precede it: ``550 5.1.1 <a@example.com>: unknown``) and
    ends where the line of another address begins.
    """
    hits = [
        (m.start(), address, address.lower())
        for m in ADDRESS_PATTERN.finditer(text)
        if (address := normalize_address(m.group(0)))
        and address.lower() not in excluded
        and not _is_system(address.lower())
    ]
    written: dict[str, str] = {}
    contexts: dict[str, list[str]] = {}
    next_other = len(text)  # where the next hit of a different address begins
    for index in range(len(hits) - 1, -1, -1):
        start, address, key = hits[index]
        if index + 1 < len(hits) and hits[index + 1][2] != key:
            next_other = line_start(text, hits[index + 1][0])
        written[key] = address
        end = max(min(next_other, start + _CONTEXT_MAX), start)
        contexts.setdefault(key, []).append(text[line_start(text, start) : end])
    ordered = dict.fromkeys(key for _, _, key in hits)
    return {written[key]: "\n".join(reversed(contexts[key][-_CONTEXTS_MAX:])) for key in ordered}


def _excluded_addresses(msg: Message, originals: list[Message], bounce_address: str) -> set[str]:
    """Addresses that cannot be the bounced recipient: the bounce's own and our sender's."""
    values = [decoded_header(msg, h) for h in ("From", "To", "Sender", "Reply-To", "Return-Path")]
    for original in originals:
        values += [decoded_header(original, h) for h in ("From", "Sender", "Return-Path")]
    excluded = {normalize_address(a).lower() for a in addresses_in(", ".join(values))}
    if bounce_address:
        excluded.add(normalize_address(bounce_address).lower())
    bounce_local, _, bounce_domain = bounce_address.lower().rpartition("@")
    if bounce_local:
        excluded |= {
            a
            for a in excluded
            if a.startswith(bounce_local + "+") and a.endswith("@" + bounce_domain)
        }
    return {a for a in excluded if a}


def _is_system(address: str) -> bool:
    local = address.rpartition("@")[0]
    return local in _MAIL_SYSTEM_LOCALS or bool(_EXCHANGE_SYSTEM.fullmatch(local))
