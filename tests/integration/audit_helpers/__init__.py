"""Targets for tests/integration/test_audit.py: certificates, openssl s_server,
a toy POP3 server and Dovecot, all on 127.0.0.1, all stopped by PID."""
