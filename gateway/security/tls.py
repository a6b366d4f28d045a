"""Server credentials that follow their files: a certificate, key or client CA replaced on
disk is used from the next handshake on, without a restart; established connections keep
theirs (grpc's dynamic server credentials: the fetcher runs on each new handshake)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import grpc

from gateway import metrics
from gateway.security_config import TlsConfig

log = logging.getLogger("gateway.tls")


class ReloadingCredentials:
    """The certificate configuration, read again whenever a file's mtime or size changes.

    The fetcher runs on every handshake, so it only stats the files (microseconds) and
    returns None when nothing changed; a half-written file (unreadable or unparsable) keeps
    the previous configuration and is tried again on the next handshake."""

    def __init__(self, cfg: TlsConfig) -> None:
        self._cfg = cfg
        self._paths = [Path(cfg.cert_file), Path(cfg.key_file)]
        if cfg.client_ca_file:
            self._paths.append(Path(cfg.client_ca_file))
        self._stamp = self._stat()
        self.initial = self._read()
        self.reloads = 0

    def _stat(self) -> tuple[tuple[int, int], ...]:
        out = []
        for path in self._paths:
            try:
                info = os.stat(path)
            except OSError:
                out.append((0, 0))
            else:
                out.append((info.st_mtime_ns, info.st_size))
        return tuple(out)

    def _read(self) -> grpc.ServerCertificateConfiguration:
        cfg = self._cfg
        pair = (Path(cfg.key_file).read_bytes(), Path(cfg.cert_file).read_bytes())
        ca = Path(cfg.client_ca_file).read_bytes() if cfg.client_ca_file else None
        return grpc.ssl_server_certificate_configuration([pair], root_certificates=ca)

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        stamp = self._stat()
        if stamp == self._stamp:
            return None
        try:
            fresh = self._read()
        except OSError as exc:
            log.warning("tls files changed but cannot be read yet", extra={"error": str(exc)})
            return None
        self._stamp = stamp
        self.reloads += 1
        metrics.TLS_RELOADS.inc()
        log.info("tls certificates reloaded", extra={"reloads": self.reloads})
        return fresh

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self.initial,
            self.fetch,  # type: ignore[arg-type]  # grpc's stub omits None ("no change")
            require_client_authentication=self._cfg.require_client_cert,
        )
