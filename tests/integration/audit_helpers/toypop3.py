"""A tiny POP3 server with STLS for the audit tests, in a thread of the test process.

vulnerable=True reproduces two classic mistakes: USER/PLAIN offered before TLS
(with an APOP banner and a versioned IMPLEMENTATION), and the STLS command
injection: bytes read before the handshake stay buffered and are executed as
if they had arrived inside TLS. vulnerable=False does the right things and
delays failed logins by fail_delay seconds.
"""
import socketserver
import ssl
import threading
import time

MAX_COMMANDS = 100  # per session: every loop is bounded
MAX_LINE = 4096


class _Handler(socketserver.BaseRequestHandler):
    def send(self, line):
        self.sock.sendall(line.encode() + b"\r\n")

    def capa(self, tls):
        srv = self.server
        lines = ["CAPA", "TOP", "UIDL", "RESP-CODES"]
        if not tls:
            lines.append("STLS")
        if tls or srv.vulnerable:
            lines += ["USER", "SASL PLAIN"]
        lines.append("IMPLEMENTATION toypop 1.2.3" if srv.vulnerable else "IMPLEMENTATION toypop")
        return lines

    def handle(self):
        srv = self.server
        self.sock = self.request
        self.sock.settimeout(10)
        buf = b""
        tls = False
        self.send("+OK toypop ready <1896.697170952@toy.example>" if srv.vulnerable else "+OK toypop ready")
        for _ in range(MAX_COMMANDS):
            while b"\n" not in buf:
                data = self.sock.recv(4096)
                if not data or len(buf) > MAX_LINE:
                    return
                buf += data
            line, buf = buf.split(b"\n", 1)
            cmd = line.rstrip(b"\r").decode("latin-1")
            verb = cmd.split(" ", 1)[0].upper()
            if verb == "CAPA":
                self.send("+OK capability list follows")
                for c in self.capa(tls):
                    self.send(c)
                self.send(".")
            elif verb == "STLS" and not tls:
                if buf and not srv.vulnerable:
                    self.send("-ERR command pipelined behind STLS")
                    return
                self.send("+OK begin TLS negotiation")
                self.sock = srv.ctx.wrap_socket(self.sock, server_side=True)
                tls = True
                # The bug when vulnerable: `buf`, read in clear, is kept.
            elif verb == "USER":
                self.send("+OK" if tls or srv.vulnerable else "-ERR [AUTH] TLS required")
            elif verb in ("PASS", "AUTH"):
                time.sleep(srv.fail_delay)
                self.send("-ERR [AUTH] invalid credentials")
            elif verb == "QUIT":
                self.send("+OK bye")
                return
            else:
                self.send("-ERR unknown command")


class ToyPop3(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, cert, key, vulnerable, fail_delay=0.0):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.vulnerable = vulnerable
        self.fail_delay = fail_delay
        super().__init__(("127.0.0.1", 0), _Handler)
        self.port = self.server_address[1]
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def handle_error(self, request, client_address):
        # The audit's raw probes and aborted handshakes land here: expected.
        pass

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)
