"""A real S3-compatible server on loopback for tests: moto's standalone server (``moto[server]``).

moto speaks the S3 HTTP API (conditional puts, listing, bulk delete) and, with
``auth=True``, checks request signatures against IAM access keys, so wrong
credentials are refused as AWS refuses them. (No MinIO server binary is
available from the package registries this project may use.)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.loopback import free_port

BUCKET = "gen-searcher-test"
SETUP_KEY = {"aws_access_key_id": "setup", "aws_secret_access_key": "setup"}


@dataclass
class S3Server:
    """A moto server process on 127.0.0.1; ``stop``/``start`` keep the port (the data does not survive)."""

    port: int = field(default_factory=free_port)
    auth: bool = False
    access_key_id: str = "testing"
    secret_access_key: str = "testing-secret-3b9f1e"
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, bucket: str = BUCKET) -> None:
        binary = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
        if binary is None:
            raise RuntimeError("moto_server is not installed (pip install 'moto[server]')")
        env = dict(os.environ)
        if self.auth:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = "4"  # user, key, policy, bucket; then signatures are checked
        self.process = subprocess.Popen(
            [binary, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.05)
        self._setup(bucket)

    def _client(self, service: str, **keys: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1", **keys)

    def _setup(self, bucket: str) -> None:
        if self.auth:
            iam = self._client("iam", **SETUP_KEY)
            iam.create_user(UserName="gen-searcher")
            key = iam.create_access_key(UserName="gen-searcher")["AccessKey"]
            policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
            iam.put_user_policy(UserName="gen-searcher", PolicyName="all", PolicyDocument=json.dumps(policy))
            self.access_key_id, self.secret_access_key = key["AccessKeyId"], key["SecretAccessKey"]
        self._client(
            "s3", aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret_access_key
        ).create_bucket(Bucket=bucket)

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections open, nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGCONT)
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def env(self) -> dict[str, str]:
        """The standard AWS variables that point a client at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_REGION": "us-east-1",
        }

    def images_settings(self, cache_dir: Path, **extra: Any) -> dict[str, Any]:
        """An ``images`` section for a fresh prefix of the test bucket."""
        return {
            "url": f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}",
            "endpoint_url": self.endpoint,
            "region": "us-east-1",
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "cache_dir": str(cache_dir),
            "timeout_s": 2.0,
            **extra,
        }
