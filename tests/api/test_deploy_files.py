"""``deploy/``: the compose file, its nginx config (kept equal to the generator's) and the
local cluster's nginx config, which nginx itself must accept."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from deploy.local_cluster import (  # noqa: E402
    RETRIED_POSTS,
    _nginx_user,
    free_port,
    nginx_conf,
)

COMPOSE_NGINX = dict(upstreams=["api-1:8000", "api-2:8000"], listen="80", user="nginx",
                     resolver="127.0.0.11")


def test_the_compose_nginx_conf_is_the_generated_one():
    expected = nginx_conf(COMPOSE_NGINX["upstreams"], COMPOSE_NGINX["listen"],
                          user=COMPOSE_NGINX["user"], resolver=COMPOSE_NGINX["resolver"])
    assert (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8") == expected, (
        "deploy/nginx.conf is stale: regenerate it with deploy.local_cluster.nginx_conf("
        f"**{COMPOSE_NGINX})")


def test_only_idempotent_posts_are_repeated_on_the_other_replica():
    conf = nginx_conf(["127.0.0.1:1", "127.0.0.1:2"], "127.0.0.1:3")
    lines = [line.strip() for line in conf.splitlines()]
    retried = [n for n, line in enumerate(lines) if "non_idempotent" in line
               and line.startswith("proxy_next_upstream ")]
    assert len(retried) == 1
    location = max(n for n, line in enumerate(lines[:retried[0]]) if line.startswith("location"))
    assert lines[location] == f"location ~ {RETRIED_POSTS} {{"
    assert RETRIED_POSTS == r"^/v1/(appeals|classify|classify/batch)$"
    assert "X-Upstream" not in conf  # internal addresses only when asked for


def test_the_compose_file_has_the_topology():
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) == {"postgres", "api-1", "api-2", "proxy", "ray-head"}
    assert services["api-1"] == services["api-2"]
    api = services["api-1"]
    assert api["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert api["environment"]["DATABASE_URL"].startswith("postgresql://mcu:")
    assert "@postgres:5432/mcu" in api["environment"]["DATABASE_URL"]
    assert services["proxy"]["volumes"] == ["./nginx.conf:/etc/nginx/mcu.conf:ro"]
    assert set(services["proxy"]["depends_on"]) == {"api-1", "api-2"}
    assert services["ray-head"]["command"][:4] == ["ray", "start", "--head", "--block"]
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    assert 'pip install -e ".[scale]"' in dockerfile


@pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
                    reason="nginx is not installed (.ci/setup-system.sh installs it)")
def test_nginx_accepts_the_local_cluster_config(tmp_path):
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / "tmp" / kind).mkdir(parents=True)
    config = tmp_path / "nginx.conf"
    config.write_text(nginx_conf(["127.0.0.1:1", "127.0.0.1:2"], f"127.0.0.1:{free_port()}",
                                 files=tmp_path, user=_nginx_user(), upstream_header=True),
                      encoding="utf-8")
    checked = subprocess.run([binary, "-t", "-p", str(tmp_path), "-c", str(config), "-e",
                              str(tmp_path / "error.log")], capture_output=True, text=True,
                             timeout=30)
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr
