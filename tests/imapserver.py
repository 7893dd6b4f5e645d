"""A small IMAP4rev1 server for tests: enough of RFC 3501 for a read-only client.

It serves one folder of messages over plain TCP on 127.0.0.1 and records every command,
so a test can check that a client only looked (EXAMINE, UID SEARCH, UID FETCH with PEEK)
and never changed anything (no SELECT, STORE, COPY, MOVE or EXPUNGE).
"""

from __future__ import annotations

import socketserver
import threading
from dataclasses import dataclass, field

from subscribe.devmail import free_port


@dataclass
class Folder:
    messages: list[bytes]
    username: str = "bounces"
    password: str = "secret"
    commands: list[str] = field(default_factory=list)


class _Handler(socketserver.StreamRequestHandler):
    folder: Folder

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("* OK test IMAP4rev1 server ready")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            tag, _, rest = line.decode().strip().partition(" ")
            command, _, args = rest.partition(" ")
            verb = command.upper()
            if verb == "UID":
                sub, _, args = args.partition(" ")
                verb = f"UID {sub.upper()}"
            self.folder.commands.append(f"{verb} {args}".strip())
            if not self.answer(tag, verb, args):
                return

    def answer(self, tag: str, verb: str, args: str) -> bool:
        folder = self.folder
        if verb == "CAPABILITY":
            self.reply("* CAPABILITY IMAP4rev1")
        elif verb == "LOGIN":
            user, _, password = args.partition(" ")
            if (user.strip('"'), password.strip('"')) != (folder.username, folder.password):
                self.reply(f"{tag} NO [AUTHENTICATIONFAILED] invalid credentials")
                return True
        elif verb == "EXAMINE":
            self.reply(f"* {len(folder.messages)} EXISTS")
            self.reply("* OK [UIDVALIDITY 1] UIDs valid")
            self.reply(f"{tag} OK [READ-ONLY] EXAMINE completed")
            return True
        elif verb == "UID SEARCH":
            self.reply("* SEARCH " + " ".join(str(i + 1) for i in range(len(folder.messages))))
        elif verb == "UID FETCH":
            uid = int(args.split()[0])
            body = folder.messages[uid - 1]
            self.wfile.write(f"* {uid} FETCH (UID {uid} BODY[] {{{len(body)}}}\r\n".encode())
            self.wfile.write(body + b")\r\n")
        elif verb == "LOGOUT":
            self.reply("* BYE logging out")
            self.reply(f"{tag} OK LOGOUT completed")
            return False
        else:
            self.reply(f"{tag} BAD not supported here")
            return True
        self.reply(f"{tag} OK {verb} completed")
        return True


class IMAPServer:
    def __init__(self, folder: Folder) -> None:
        handler = type("Handler", (_Handler,), {"folder": folder})
        self.port = free_port()
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> IMAPServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
