"""Reading a reason from a bounce's words, its status code and its reply code.

Text comes first because real mail systems are loose with codes: many answer 5.0.0 or no
status at all and say what happened in words, and many give a 5.x.x to refusals that are
about the *sender* (reputation, SPF/DKIM/DMARC, content), which must never be held against
a reader. The rules are an ordered table, the first match wins: sender-side refusals with
unmistakable wording first (authentication, PTR, TLS, size, rate, relaying, blocklists, our
own envelope), then what the receiving side says of the address, then the vaguer content
and policy wording, then system trouble. Every quantifier is bounded, so a hostile
diagnostic cannot make a search slow.
"""

from __future__ import annotations

import functools
import re

from .reasons import BY_REPLY, Reason, by_status, first_status

# Characters of a diagnostic, or of a report's text, that are read: real ones are far
# shorter, and the bound keeps a hostile message from costing more than a few milliseconds.
WORDS_MAX = 4000

_REPLY = re.compile(r"(?<![\w.:/-])([45]\d\d)(?=[-: ]|$)", re.MULTILINE)


# (reason, wording, permanent only): "permanent only" rules say nothing of a 4xx. Compiled
# on first use (``_rules``): ~20 ms of regular expressions that `stats`, `--help` and every
# command that never reads a bounce would otherwise compile at start-up.
_RULE_WORDS: tuple[tuple[Reason, str, bool], ...] = (
    (
        Reason.AUTHENTICATION,
        (
            r"\bspf\b|sender policy framework|\bdkim\b|domainkeys|\bdmarc\b|unauthenticated|"
            r"not authenticated|authentication (?:failed|failure|required|level|check)|"
            r"required authentication|\b[45]\.7\.(?:2[0-46]|509|510|515|57)\b"
        ),
        False,
    ),
    (
        Reason.NO_PTR,
        (
            r"reverse (?:dns|lookup|mapping|hostname|resolution|record)|\bptr\b|\brdns\b|"
            r"fcrdns|"
            r"(?:cannot|can'?t|could not|unable to) (?:find|resolve|verify) (?:your |"
            r"the )?(?:host ?name|reverse|ip)|"
            r"client host .{0,80}(?:unknown|no hostname)|\b[45]\.7\.25\b"
        ),
        False,
    ),
    (
        Reason.POLICY,  # our return path failed the receiver's check: nothing about the reader
        (
            r"sender verif\w{0,8}.{0,40}fail|unknown sender|sender (?:is )?unknown|"
            r"unresolvable rfc\.?5321|"
            r"(?:your|the sender'?s?|sending|sender) domain\b.{0,60}(?:no (?:mx|a record|dns)|"
            r"does not exist|doesn'?t exist|not found|unknown|not resolv|unresolvable|"
            r"cannot be resolved)|"
            r"verification failed for <?[^\s<>@]{1,64}@[^\s<>]{1,255}>?\s{0,3}550|"
            r"sender callout|callout verification failed for sender|"
            r"[ée]metteur invalide|invalid sender|exp[ée]diteur (?:invalide|inconnu)|"
            r"absender\w{0,10} (?:ist )?(?:unbekannt|ung(?:ü|ue|u)ltig|abgelehnt)|"
            r"mittente (?:sconosciut|non valid|rifiutat)|"
            r"remitente (?:desconocido|no v[áa]lido|rechazado)|"
            r"remetente (?:desconhecido|inv[áa]lido|rejeitado)|неизвестный отправитель"
        ),
        False,
    ),
    (
        Reason.TLS_REQUIRED,
        (
            r"\btls\b.{0,20}(?:required|mandatory|needed)|"
            r"(?:requires?|must (?:issue|use)) (?:a )?(?:starttls|tls|encryption|secure)|"
            r"encryption (?:is )?(?:required|needed)|secure connection (?:is )?required|"
            r"\b[45]\.7\.1[01]\b"
        ),
        False,
    ),
    (
        Reason.RATE_LIMITED,  # our own sending quota, before the reader's mailbox quota
        (r"sending (?:limit|quota)|daily (?:sending )?(?:limit|quota)"),
        False,
    ),
    (
        Reason.TOO_BIG,  # the message's size, worded like a quota: before the mailbox rules
        (
            r"(?:mail|message|e-?mail) size (?:limit )?(?:exceeded|exceeds|too)|"
            r"taille (?:limite )?(?:du )?message"
        ),
        False,
    ),
    (
        Reason.MAILBOX_FULL,
        (
            r"writing message: file too large|mail ?file is full|inbox (?:is )?(?:full|over)|"
            r"caixa (?:postal |de correio |de entrada )?.{0,30}(?:cheia|lotada)|cota excedida|"
            r"casilla.{0,30}llena|bo[iî]te.{0,40}pleine|"
            r"skrzynka.{0,30}(?:pe[łl]na|przepe[łl]niona)|mailbox (?:is )?vol\b|"
            r"邮箱已满|空间不足|용량|가득 ?찼|"
            r"mail ?box (?:is |was )?(?:full|over|out of)|mail ?box (?:size|storage|quota)|"
            r"mail ?box.{0,30}\bfull\b|"
            r"(?:quota|storage|size) (?:limit )?(?:exceeded|full|reached)|over ?quota|"
            r"exceed(?:s|ed)? (?:his |her |their |the |its )?(?:storage|quota|mail ?box)|"
            r"insufficient (?:storage|space|disk)|(?:disk|storage) quota|full mail ?box|"
            r"mail ?box exceeded|"
            r"postfach.{0,20}voll|buz[oó]n.{0,20}lleno|"
            r"casella.{0,20}piena|переполнен|容量|\bquota\b|\b[45]\.2\.2\b"
        ),
        False,
    ),
    (
        Reason.TOO_BIG,
        (
            r"message (?:size|length) (?:exceeds|is too|too|over|limit)|"
            r"(?:message|mail|e-?mail) (?:is |was )?too (?:big|large|long)|"
            r"exceed(?:s|ed)? (?:the )?(?:maximum|max|fixed|allowed|size) "
            r"(?:\w+ )?(?:message )?size|"
            r"size (?:of (?:the |your )?message )?exceeds|too large|"
            r"maximum (?:message )?size|\b5\.(?:3\.4|2\.3)\b"
        ),
        False,
    ),
    (
        Reason.RATE_LIMITED,
        (
            r"too many (?:connections|concurrent|simultaneous|sessions|messages|"
            r"mails|emails|recipients|rcpt|errors|invalid)|"
            r"rate[- ]?limit|unusual rate|at a rate|(?:connection|message|sending) rate|"
            r"throttl|\bTSS0[1-8]\b|\bTS0[12]\b|gr[ae]y-?list|unexpected volume|"
            r"\b[45]\.7\.28\b|slow down|too fast|\b4\.4\.5\b|frequency (?:limited|of receiving)|"
            r"(?:receiving|sending) mail too quickly|excessive volume|max message per connection|"
            r"trop de connexions"
        ),
        False,
    ),
    (
        Reason.RELAYING_DENIED,
        (
            r"relay(?:ing)? (?:access )?(?:is )?(?:denied|not (?:permitted|"
            r"allowed|authori[sz]ed)|prohibited|rejected|disallowed)|"
            r"(?:not permitted|not allowed|unable|cannot|can'?t) (?:to )?relay|"
            r"we do not relay|no relaying|list of allowed rcpthosts|credentials for relay|"
            r"\b5\.7\.64\b"
        ),
        False,
    ),
    (
        Reason.BLOCKED,
        (
            r"spamhaus|barracuda|sorbs|spamcop|uceprotect|abuseat|\bpsbl\b|invaluement|"
            r"mailspike|dnsbl|\brbl\b|block ?list|black ?list|deny ?list|blocked using|"
            r"(?<!not )listed (?:at|in|on|by)|reputation|banned sending ip|"
            r"(?:your|sending|sender'?s?|the|connecting|client) ip(?: address)?.{0,40}(?:blocked|"
            r"banned|listed|rejected|refused|not allowed)|"
            r"(?:host|ip|server|network|domain) .{0,40}(?:has been|is|was) (?:blocked|"
            r"banned|blacklisted)|"
            r"(?:connections?|mail|messages) (?:from .{0,60})?(?:will not be|"
            r"are not|not) accepted from|"
            r"messages from .{0,60}weren'?t sent|not accepting connections|"
            r"will not accept (?:delivery of )?(?:this|your) "
            r"(?:message|mail|e-?mail)|permanently deferred|ipcheck\.proofpoint|"
            r"\bS3[01]\d\d\b|\[BL\d\d\]|junkmail rejected|(?:ont|a) [ée]t[ée] bloqu|"
            r"\b(?:OFR|LPN)\w{0,6}_(?:10[123]|510|999)\b|adresse ip source bloqu|"
            r"\b5\.7\.(?:606|511|708|70[0-5])\b"
        ),
        False,
    ),
    (
        Reason.POLICY,  # our envelope or greeting refused: about the sender, not the reader
        (
            r"sender (?:address )?rejected|in reply to mail from|"
            r"(?:sender|sending) (?:domain|address)|\bhelo\b|\behlo\b|"
            r"envelope (?:sender|from)|anti-?spoof|\b5\.1\.[78]\b|\b5\.7\.27\b"
        ),
        False,
    ),
    (
        Reason.SYSTEM_ERROR,  # a DNS lookup that failed for now is no missing domain
        (
            r"not found, try again|name service error.{0,120}try again|"
            r"temporary (?:dns|lookup|name) (?:failure|error)|"
            r"dns (?:lookup )?(?:timeout|timed out|temporar)|servfail|"
            r"malformed or unexpected name server reply|"
            # the network on the way, before the vaguer "refused" of the policy rule
            r"connect to \S{1,300}: (?:connection refused|connection timed out|no route to host|"
            r"network is unreachable)|^connection (?:refused|timed out|reset)"
        ),
        False,
    ),
    (
        Reason.UNDETERMINED,  # Google Groups: "may not exist, or you may not have permission"
        (r"group you tried to contact .{0,80}may not exist"),
        False,
    ),
    (
        Reason.HOST_UNKNOWN,
        (
            r"host (?:or domain name )?not found|"
            r"domain (?:name )?(?:not found|unknown|not exist|does not exist|doesn'?t exist)|"
            r"domain \S{1,255} (?:does not exist|doesn'?t exist|(?:is )?not found)|"
            r"mx records point to non-?existent hosts|"
            r"unknown (?:host|domain)|no such (?:host|domain)|host unknown|"
            r"(?:domain|host) (?:is )?(?:invalid|unresolvable)|"
            r"unroute?able (?:address|domain|mail domain)|no (?:mx|mail exchanger|valid mx)|"
            r"mx (?:record )?(?:not found|lookup failed)|nxdomain|non-?existent ?domain|"
            r"couldn'?t find any host|null mx|does not accept (?:e-?)?mail\b(?!\s{0,3}from)|"
            r"bad destination system|(?:domaine|h[ôo]te) (?:introuvable|inexistant|inconnu)|"
            r"域名不存在|домен.{0,20}не (?:найден|существует)|"
            r"\b5\.1\.2\b"
        ),
        True,
    ),
    (
        Reason.USER_UNKNOWN,
        (
            r"user(?:name)? (?:is )?unknown|"
            r"unknown (?:user|recipient|mail ?box|local[- ]part|address|account|alias)|"
            r"no such (?:user|recipient|mail ?box|address|account|person|local user)|"
            r"(?:user|recipient|mail ?box|address|account|addressee)\b.{0,40}(?:does not|"
            r"doesn'?t|did not|not) exist|"
            r"(?:user|recipient|mail ?box|address|account)s? (?:was |is )?not (?:found|"
            r"known|listed|valid|registered)|"
            r"recipient ?not ?found|recip ?not ?found|"
            r"not (?:a )?(?:valid|known) (?:user|recipient|mail ?box|address)|"
            r"invalid (?:recipient|mail ?box|address|user|account|e-?mail)|"
            r"bad (?:destination )?(?:mail ?box|recipient)|"
            r"doesn'?t have an? [\w.-]{1,100} account|(?:has|have) no (?:account|mail ?box)|"
            r"wasn'?t found at|(?:couldn'?t|could not|can'?t|cannot) be found|"
            r"no mail ?box here|"
            r"mail ?box (?:unavailable|not found|name not allowed|does not exist)|"
            r"not listed in (?:the )?(?:domino |public )?(?:directory|name and address book)|"
            r"nicht im (?:domino-?)?verzeichnis|pas r[ée]pertori[ée]e? dans l'annuaire|"
            r"unrecogni[sz]ed o/?r[- ]?name|(?:recipient|user) name is not recogni[sz]ed|"
            r"non-?existent|inexistent|not our customer|"
            r"recipient address rejected: access denied|benutzer.{0,20}unbekannt|unbekannt|"
            r"existiert nicht|n'existe pas|inconnu|no existe|desconocido|inesistente|"
            r"não existe|не существует|нет такого|存在しません|宛先不明|ユーザ.{0,3}不明|"
            r"(?:address|addressee|recipient|mail ?box|account) (?:is )?unknown|"
            r"(?:empf(?:ä|ae|a)nger\w{0,10}|e-?mail-?adresse) (?:ist )?ung(?:ü|ue|u)ltig|"
            r"destinataire (?:invalide|introuvable)|adresse (?:e-?mail |[ée]lectronique )?invalide|"
            r"sconosciut|desconhecid|"
            r"nie istnieje|bestaat niet|не найден|不存在|존재하지 않|없는 (?:사용자|주소|계정)|"
            r"\b[45]\.1\.(?:1|3|10)\b"
        ),
        True,
    ),
    (
        Reason.DISABLED,
        (
            r"(?:account|mail ?box|user|address|recipient) (?:has been |is |"
            r"was )?(?:closed|deleted|removed|terminated|discontinued|cancell?ed|"
            r"expired)|"
            r"disabled or discontinued|"
            r"no longer (?:active|exists?|valid|in use|available|used|with|employed|here|at)|"
            r"has (?:moved|left)|moved permanently|"
            r"(?:disabled|inactive|suspended) (?:for|since|over) (?:a long|long|more than|\d)|"
            r"(?:prolonged |long )inactivity|dormant|\b5\.1\.6\b|\b5\.7\.17\b"
        ),
        True,
    ),
    (
        Reason.SUSPENDED,
        (
            r"(?:account|mail ?box|user|address|recipient)s? (?:is |has been |"
            r"was |temporarily |currently ){0,3}(?:disabled|suspended|inactive|"
            r"deactivated|locked|frozen|blocked|on hold|not active|not enabled)|"
            r"(?:disabled|suspended|inactive|deactivated|locked|frozen) (?:account|mail ?box|user)|"
            r"\b[45]\.2\.1\b|\b5\.7\.13\b"
        ),
        False,
    ),
    (
        Reason.EXPIRED,
        (
            r"expired|retry (?:time(?:out)?|period) (?:exceeded|expired|reached)|"
            r"in (?:the )?queue too long|too long in (?:the )?queue|"
            r"(?:could not|couldn'?t|wasn'?t|was not) (?:be )?delivered (?:for|within|in) \d|"
            r"message timed out|time(?:d)?[- ]?out.{0,30}(?:queue|deliver)|retries exceeded|"
            r"failing for a long time|"
            r"\b[45]\.4\.7\b"
        ),
        False,
    ),
    (
        Reason.SPAM,
        (
            r"spam|junk|unsolicited|bulk (?:mail|e-?mail)|"
            r"content (?:rejected|filter|policy|scan)|"
            r"message (?:content|body) (?:rejected|not accepted|contains)|"
            r"rejected (?:due to|because of|for) (?:its )?content|virus|malware|phish|"
            r"infected|suspicious|uribl|surbl|banned (?:content|attachment|file)|"
            r"\b5\.7\.50[13]\b|\b5\.6\.\d{1,3}\b|mail rejet[ée]|\bOFR\w{0,6}_506\b|DT:SPM|"
            r"not rfc ?\d{0,4} ?compliant|malformed (?:message|header)"
        ),
        False,
    ),
    (
        Reason.POLICY,  # wording that is vaguer than all of the above
        (
            r"polic(?:y|ies)|not (?:authori[sz]ed|allowed|permitted|accepted)|prohibited|"
            r"administrative|access denied|denied|refused|restricted|blocked|banned|"
            r"rejected by (?:the )?(?:recipient|server|domain|administrator|organi[sz]ation|user)|"
            r"(?:white|allow) ?list|refus[ée]|abgelehnt|受信拒否|拒否|\b[45]\.7\.\d{1,3}\b"
        ),
        False,
    ),
    (
        Reason.SYSTEM_ERROR,
        (
            r"system error|internal (?:server )?error|local error|"
            r"mail system (?:error|problem|full)|server (?:error|busy|unavailable|too busy)|"
            r"service (?:not |un)available|"
            r"temporar(?:y|ily) (?:failure|error|unavailable|rejected|deferred|not available)|"
            r"try (?:again )?later|"
            r"connection (?:refused|timed out|reset|lost|closed|dropped)|lost connection|"
            r"timed? ?out|network (?:is )?unreachable|no route to host|"
            r"(?:unable|could not|couldn'?t|can'?t) (?:to )?connect|mail ?loop|"
            r"loop(?:s|ing)? (?:back|detected)|too many hops|hop count|"
            r"insufficient system storage|(?:read|write|i/o) error|misconfigur"
        ),
        False,
    ),
)


@functools.cache
def _rules() -> tuple[tuple[Reason, re.Pattern[str], bool], ...]:
    return tuple(
        (reason, re.compile(words, re.IGNORECASE), permanent_only)
        for reason, words, permanent_only in _RULE_WORDS
    )


def reason_for(status: str, text: str, *, more_text: str = "") -> Reason:
    """The reason a recipient bounced, from its status code and diagnostic ``text``.

    ``more_text`` (the human-readable part of a report) is read only when neither the
    diagnostic's words nor a specific status code say anything: it often holds boilerplate.
    """
    text, more_text = _one_line(text), _one_line(more_text)
    status = status or first_status(text)
    reply = _REPLY.search(text)
    temporary = (status or (reply.group(1) if reply else "5"))[0] == "4"
    found = _by_words(text, temporary)
    if found is None and status:
        found = by_status(status)
    if found is None and more_text:
        found = _by_words(more_text, temporary)
    if found is None and reply:
        found = BY_REPLY.get(reply.group(1))
    return found or Reason.UNDETERMINED


def reason_in_words(text: str) -> tuple[Reason, re.Match[str]] | None:
    """The first rule the words of ``text`` match, and where: evidence for a bounce that
    names no status or reply code at all (a Domino, X.400 or Japanese mail system's)."""
    text = _one_line(text)
    for reason, pattern, _ in _rules():
        match = pattern.search(text)
        if match:
            return reason, match
    return None


def _one_line(text: str) -> str:
    # Text bounces wrap their diagnostics ("Host not\n    found, try again"); the rules
    # are written for single spaces.
    return " ".join(text[:WORDS_MAX].split())


def _by_words(text: str, temporary: bool) -> Reason | None:
    for reason, pattern, permanent_only in _rules():
        if (permanent_only and temporary) or not pattern.search(text):
            continue
        return reason
    if temporary:  # "user unknown" in a 4xx: the receiving side is unsure for now
        permanent = (r for r, p, only in _rules() if only and p.search(text))
        if next(permanent, None) is not None:
            return Reason.SYSTEM_ERROR
    return None
