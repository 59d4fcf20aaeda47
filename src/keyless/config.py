"""Settings: where state lives, which ports to bind, and token lifetimes.

Every setting has an environment variable (``KEYLESS_*``) and a CLI option; the CLI
passes its options in explicitly, the environment fills in the rest.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_HTTPS_PORT = 47443
DEFAULT_HTTP_PORT = 47480
# `keyless up --log-level` / KEYLESS_LOG_LEVEL; at info and below each request is logged.
LOG_LEVELS = ("debug", "info", "warning", "error")


def default_data_dir() -> Path:
    return Path(os.environ.get("KEYLESS_DATA_DIR") or Path.home() / ".keyless")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    host: str = "127.0.0.1"
    # The HTTPS listener serves every emulated host name (and direct mode on localhost).
    https_port: int = DEFAULT_HTTPS_PORT
    # The HTTP listener is the forward proxy and the plain-HTTP identity endpoints.
    http_port: int = DEFAULT_HTTP_PORT
    database_url: str | None = None
    # Lifetimes, in seconds, as Entra issues them.
    client_token_lifetime: int = 3599
    managed_identity_token_lifetime: int = 86700
    # Signing keys stay published this long after rotation so their tokens keep validating.
    signing_key_grace: int = 86700 + 3600
    page_size: int = 100
    # Per-workload identity-endpoint rate limit (requests/second; 0: off). Azure's is 20.
    identity_rate_limit: int = 0
    # Clock skew tolerated when validating nbf/exp.
    token_leeway: int = 300
    # Role assignments per subscription (Azure: 4,000); beyond it RoleAssignmentLimitExceeded.
    role_assignment_limit: int = 4000
    # BENCHMARK-ONLY switch (KEYLESS_RBAC_ENFORCEMENT=off): skip resource-manager authorization
    # so bench/rbac.py can measure its cost. Never turn it off otherwise; the default is on.
    rbac_enforcement: bool = True
    # Let federation fetch issuers' keys from loopback and private addresses (a local OIDC
    # issuer); off by default, as Entra cannot reach them either. Link-local never.
    outbound_allow_private: bool = False
    # One of LOG_LEVELS.
    log_level: str = "warning"
    # Key Vault: seconds between checks for keys a rotation policy says are due (and for
    # soft-deleted objects past their purge date), and the shortest rotation time a policy may
    # set (Azure: 7 days; lower it only to watch policy rotation happen in a test or demo).
    keyvault_rotation_interval: int = 60
    keyvault_rotation_floor: int = 7 * 86400
    # Storage: where blob content lives (KEYLESS_BLOB_DIR; default <data dir>/blobs). Replicas
    # sharing a database must share this directory too.
    blob_dir: Path | None = None
    # Seconds between sweeps of the blob directory (files no row names, blocks older than 7
    # days), and how old (inode change time) an unnamed file must be before it goes; lower the
    # grace only in tests: an upload's file waits that long at most for its commit.
    blob_sweep_interval: int = 600
    blob_sweep_grace: int = 3600
    # Media Services: seconds between checks of every customer-managed key (new versions are
    # followed, lost access makes the account inaccessible; Azure: "less than 15 minutes").
    media_key_check_interval: int = 30
    # Media Services jobs: how many one replica encodes at once, the lease a running job holds
    # (seconds; another replica takes the job over when it expires), how often idle replicas look
    # for queued jobs (seconds), FFmpeg threads per encode (0: FFmpeg decides), and the limits of a
    # JobInputHttp download (bytes, seconds); an encode running longer than
    # ``media_encode_timeout`` seconds is stopped and its output fails.
    media_job_concurrency: int = 1
    media_job_lease: int = 30
    media_job_poll_interval: float = 2.0
    media_encoder_threads: int = 0
    media_encode_timeout: int = 6 * 3600
    media_http_input_max_bytes: int = 4 * 1024**3
    media_http_input_timeout: int = 3600
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        given = {k: v for k, v in overrides.items() if v is not None}
        settings = cls(
            data_dir=default_data_dir(),
            host=os.environ.get("KEYLESS_HOST", "127.0.0.1"),
            https_port=_env_int("KEYLESS_HTTPS_PORT", DEFAULT_HTTPS_PORT),
            http_port=_env_int("KEYLESS_HTTP_PORT", DEFAULT_HTTP_PORT),
            database_url=os.environ.get("KEYLESS_DATABASE_URL") or None,
            page_size=_env_int("KEYLESS_PAGE_SIZE", 100),
            identity_rate_limit=_env_int("KEYLESS_IDENTITY_RATE_LIMIT", 0),
            client_token_lifetime=_env_int("KEYLESS_CLIENT_TOKEN_LIFETIME", 3599),
            token_leeway=_env_int("KEYLESS_TOKEN_LEEWAY", 300),
            role_assignment_limit=_env_int("KEYLESS_ROLE_ASSIGNMENT_LIMIT", 4000),
            rbac_enforcement=os.environ.get("KEYLESS_RBAC_ENFORCEMENT", "on").strip().lower() != "off",
            outbound_allow_private=os.environ.get("KEYLESS_OUTBOUND_ALLOW_PRIVATE", "").strip().lower()
            in ("1", "true", "on", "yes"),
            log_level=(os.environ.get("KEYLESS_LOG_LEVEL") or "warning").strip().lower(),
            keyvault_rotation_interval=_env_int("KEYLESS_KEYVAULT_ROTATION_INTERVAL", 60),
            keyvault_rotation_floor=_env_int("KEYLESS_KEYVAULT_ROTATION_FLOOR", 7 * 86400),
            blob_dir=Path(os.environ["KEYLESS_BLOB_DIR"]) if os.environ.get("KEYLESS_BLOB_DIR") else None,
            blob_sweep_interval=_env_int("KEYLESS_BLOB_SWEEP_INTERVAL", 600),
            blob_sweep_grace=_env_int("KEYLESS_BLOB_SWEEP_GRACE", 3600),
            media_key_check_interval=_env_int("KEYLESS_MEDIA_KEY_CHECK_INTERVAL", 30),
            media_job_concurrency=_env_int("KEYLESS_MEDIA_JOB_CONCURRENCY", 1),
            media_job_lease=_env_int("KEYLESS_MEDIA_JOB_LEASE", 30),
            media_job_poll_interval=_env_float("KEYLESS_MEDIA_JOB_POLL_INTERVAL", 2.0),
            media_encoder_threads=_env_int("KEYLESS_MEDIA_ENCODER_THREADS", 0),
            media_encode_timeout=_env_int("KEYLESS_MEDIA_ENCODE_TIMEOUT", 6 * 3600),
            media_http_input_max_bytes=_env_int("KEYLESS_MEDIA_HTTP_INPUT_MAX_BYTES", 4 * 1024**3),
            media_http_input_timeout=_env_int("KEYLESS_MEDIA_HTTP_INPUT_TIMEOUT", 3600),
        )
        return replace(settings, **given)  # type: ignore[arg-type]

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'keyless.db'}"

    @property
    def media_work_dir(self) -> Path:
        """Where jobs keep their input and output files while encoding (``<data dir>/media-work``)."""
        return self.data_dir / "media-work"

    @property
    def resolved_blob_dir(self) -> Path:
        """The blob content directory: ``blob_dir``, else ``<data dir>/blobs``."""
        return self.blob_dir or self.data_dir / "blobs"

    @property
    def ca_dir(self) -> Path:
        return self.data_dir / "ca"

    @property
    def ca_cert_file(self) -> Path:
        return self.ca_dir / "ca.pem"

    @property
    def ca_bundle_file(self) -> Path:
        """The system's CAs plus the local CA: what clients are pointed at."""
        return self.ca_dir / "bundle.pem"

    @property
    def root_key_file(self) -> Path:
        return self.data_dir / "root.key"

    @property
    def admin_credentials_file(self) -> Path:
        return self.data_dir / "admin.json"

    @property
    def lock_file(self) -> Path:
        """Locked (flock) by ``keyless up`` for its lifetime: the one answer to "is it running?"."""
        return self.data_dir / "server.lock"

    @property
    def runtime_file(self) -> Path:
        """Written by a running server: its pid and the ports it actually bound."""
        return self.data_dir / "server.json"
