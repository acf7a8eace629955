"""A small in-memory stand-in of the Hugging Face Hub's HTTP API, enough for `huggingface_hub` uploads and
downloads in tests (`HF_ENDPOINT=http://127.0.0.1:PORT`).

Endpoints: `POST /api/repos/create`, `POST /api/validate-yaml`, `POST /api/{type}s/{repo}/preupload/{rev}`,
`POST /api/{type}s/{repo}/commit/{rev}` (NDJSON, regular base64 files only: every file is answered "regular" at
preupload, so no LFS or Xet storage is needed), `POST /api/spaces/{repo}/variables`, `GET /api/{type}s/{repo}`
(and `/revision/{rev}`), `GET /api/{type}s/{repo}/tree/{rev}`, and `HEAD`/`GET /{prefix}{repo}/resolve/{rev}/{path}` with the headers
`hf_hub_download` checks (`X-Repo-Commit`, `ETag`, `Content-Length`, `X-Error-Code`).

Every request's `Authorization` header is recorded in `HubServer.authorizations`, so tests can check that a token
reached the server while appearing nowhere else.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool = False
    sdk: str | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    commits: list[str] = field(default_factory=list)
    sha: str = "0" * 40


def _git_blob_sha(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


class HubServer:
    """Run with `with HubServer() as hub:`; `hub.endpoint` is the URL to put in `HF_ENDPOINT`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.repos: dict[tuple[str, str], Repo] = {}
        self.authorizations: list[str | None] = []
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"hub": self})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubServer:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def repo(self, repo_id: str, repo_type: str = "model") -> Repo:
        return self.repos[(repo_type, repo_id)]


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    # -- helpers -------------------------------------------------------------------------------------------------
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self, status: int, payload=None, headers: dict[str, str] | None = None, body: bytes | None = None
    ):
        if body is None:
            body = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str, extra: dict[str, str] | None = None):
        headers = {"X-Error-Code": code, "X-Error-Message": message, **(extra or {})}
        self._send(status, {"error": message}, headers)

    def _record(self) -> None:
        with self.hub._lock:
            self.hub.authorizations.append(self.headers.get("Authorization"))
            self.hub.requests.append((self.command, self.path))

    def _find_repo(self, repo_type: str, repo_id: str) -> Repo | None:
        return self.hub.repos.get((repo_type, repo_id))

    # -- routing -------------------------------------------------------------------------------------------------
    def do_HEAD(self):
        self._record()
        self._resolve()

    def do_GET(self):
        self._record()
        path = unquote(urlparse(self.path).path)
        match = re.fullmatch(r"/api/(model|dataset|space)s/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)
        if match:
            return self._repo_info(match.group(1), match.group(2))
        match = re.fullmatch(r"/api/(model|dataset|space)s/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?", path)
        if match:
            return self._tree(match.group(1), match.group(2), match.group(4) or "")
        self._resolve()

    def do_POST(self):
        self._record()
        path = unquote(urlparse(self.path).path)
        body = self._body()
        if path == "/api/repos/create":
            return self._create(json.loads(body or b"{}"))
        if path == "/api/validate-yaml":
            return self._send(200, {"errors": [], "warnings": []})
        match = re.fullmatch(r"/api/(model|dataset|space)s/([^/]+/[^/]+)/(preupload|commit)/(.+)", path)
        if match:
            repo_type, repo_id, action, _revision = match.groups()
            repo = self._find_repo(repo_type, repo_id)
            if repo is None:
                return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
            if action == "preupload":
                files = json.loads(body)["files"]
                answer = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]
                return self._send(200, {"files": answer, "commitOid": repo.sha})
            return self._commit(repo, body)
        match = re.fullmatch(r"/api/spaces/([^/]+/[^/]+)/variables", path)
        if match:
            repo = self._find_repo("space", match.group(1))
            if repo is None:
                return self._error(404, "RepoNotFound", f"Space {match.group(1)} not found")
            data = json.loads(body)
            repo.variables[data["key"]] = data["value"]
            return self._send(200, {k: {"value": v} for k, v in repo.variables.items()})
        self._error(404, "NotFound", f"No route for POST {path}")

    # -- endpoints -----------------------------------------------------------------------------------------------
    def _create(self, payload: dict):
        repo_type = payload.get("type") or "model"
        repo_id = (
            f"{payload['organization']}/{payload['name']}" if payload.get("organization") else payload["name"]
        )
        if "/" not in repo_id:
            repo_id = f"user/{repo_id}"
        url = f"{self.hub.endpoint}/{PREFIXES[repo_type]}{repo_id}"
        with self.hub._lock:
            if (repo_type, repo_id) in self.hub.repos:
                # As the Hub does, the 409 names the existing repo (huggingface_hub's exist_ok reads its url).
                headers = {"X-Error-Code": "RepoExists", "X-Error-Message": "You already created this repo"}
                return self._send(409, {"error": "You already created this repo", "url": url}, headers)
            repo = Repo(
                repo_type, repo_id, private=payload.get("visibility") == "private", sdk=payload.get("sdk")
            )
            for variable in payload.get("variables") or []:
                repo.variables[variable["key"]] = variable["value"]
            self.hub.repos[(repo_type, repo_id)] = repo
        self._send(200, {"url": url, "name": repo_id})

    def _commit(self, repo: Repo, body: bytes):
        summary = ""
        with self.hub._lock:
            for line in body.decode().splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                key, value = item["key"], item["value"]
                if key == "header":
                    summary = value.get("summary", "")
                elif key == "file":
                    content = value["content"]
                    data = (
                        base64.b64decode(content) if value.get("encoding") == "base64" else content.encode()
                    )
                    repo.files[value["path"]] = data
                elif key == "deletedFile":
                    repo.files.pop(value["path"], None)
                elif key == "deletedFolder":
                    folder = value["path"].rstrip("/") + "/"
                    for name in [n for n in repo.files if n.startswith(folder)]:
                        del repo.files[name]
                else:
                    return self._error(
                        400, "Unsupported", f"The stand-in Hub does not support {key!r} operations"
                    )
            digest = hashlib.sha1(repo.sha.encode() + summary.encode() + repr(sorted(repo.files)).encode())
            for name in sorted(repo.files):
                digest.update(repo.files[name])
            repo.sha = digest.hexdigest()
            repo.commits.append(summary)
        url = f"{self.hub.endpoint}/{PREFIXES[repo.repo_type]}{repo.repo_id}/commit/{repo.sha}"
        self._send(200, {"commitUrl": url, "commitOid": repo.sha, "success": True})

    def _repo_info(self, repo_type: str, repo_id: str):
        repo = self._find_repo(repo_type, repo_id)
        if repo is None:
            return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
        siblings = [{"rfilename": name, "size": len(data)} for name, data in sorted(repo.files.items())]
        info = {"id": repo_id, "sha": repo.sha, "private": repo.private, "siblings": siblings, "tags": []}
        if repo.sdk:
            info["sdk"] = repo.sdk
        self._send(200, info)

    def _tree(self, repo_type: str, repo_id: str, folder: str):
        """Every file under `folder` (the listing is always recursive and fits one page)."""
        repo = self._find_repo(repo_type, repo_id)
        if repo is None:
            return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
        prefix = folder.rstrip("/") + "/" if folder else ""
        entries = [
            {"type": "file", "path": name, "size": len(data), "oid": _git_blob_sha(data)}
            for name, data in sorted(repo.files.items())
            if name.startswith(prefix)
        ]
        self._send(200, entries)

    def _resolve(self):
        path = unquote(urlparse(self.path).path).lstrip("/")
        repo_type = "model"
        for kind, prefix in PREFIXES.items():
            if prefix and path.startswith(prefix):
                repo_type, path = kind, path[len(prefix) :]
        match = re.fullmatch(r"([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if not match:
            return self._error(404, "NotFound", f"No route for {self.command} {self.path}")
        repo_id, _revision, filename = match.groups()
        repo = self._find_repo(repo_type, repo_id)
        if repo is None:
            return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
        if filename not in repo.files:
            return self._error(404, "EntryNotFound", f"{filename} not found", {"X-Repo-Commit": repo.sha})
        content = repo.files[filename]
        headers = {"X-Repo-Commit": repo.sha, "ETag": f'"{_git_blob_sha(content)}"'}
        self._send(200, headers=headers, body=content)


__all__ = ["HubServer", "Repo"]
