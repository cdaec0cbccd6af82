"""Videos and keypoint files in object storage (S3 and S3-compatible: MinIO, Ceph's gateway).

``input.directory`` or a sample sheet's ``path`` / ``keypoints2d`` may be an ``s3://bucket/prefix``
URL. The workflow transfers the objects itself (Snakemake's S3 storage plugin stages each one for
the job that reads it); this module only answers the questions the workflow asks while it builds
its job graph: which objects under a prefix match the patterns, and whether a given object exists.

Listing is paginated (S3 ``ListObjectsV2``, up to 1000 keys per request), so a prefix with N
objects costs ceil(N / 1000) requests, never one per object; a non-recursive listing asks the
server for one level only (``Delimiter='/'``), so objects in deeper "folders" cost nothing.
:class:`ObjectIndex` lists each prefix once and answers ``exists`` from that listing.

Credentials are never part of posepipe's configuration: boto3 finds them as for any AWS tool
(``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, ``AWS_PROFILE`` and
``~/.aws/credentials``, an instance role), unless Snakemake's ``--storage-s3-access-key`` /
``--storage-s3-secret-key`` (or ``SNAKEMAKE_STORAGE_S3_ACCESS_KEY`` / ``..._SECRET_KEY``) are
given, which the plugin uses too. The endpoint (MinIO, Ceph) is ``--storage-s3-endpoint-url``,
``SNAKEMAKE_STORAGE_S3_ENDPOINT_URL``, or boto3's own ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``.

Every failure is a :class:`~posepipe.errors.PosepipeError` naming the URL and the reason in one
line (:func:`reason_of`): a missing bucket or object, unknown or wrong credentials, no access,
an endpoint that does not answer.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from posepipe.errors import PosepipeError

SCHEME = "s3://"
# Snakemake's S3 plugin reads its settings from these when they are not on the command line.
PLUGIN_ENV = {
    "endpoint_url": "SNAKEMAKE_STORAGE_S3_ENDPOINT_URL",
    "region": "SNAKEMAKE_STORAGE_S3_REGION",
    "access_key": "SNAKEMAKE_STORAGE_S3_ACCESS_KEY",
    "secret_key": "SNAKEMAKE_STORAGE_S3_SECRET_KEY",
    "token": "SNAKEMAKE_STORAGE_S3_TOKEN",
}
DEFAULT_REGION = "us-east-1"  # the plugin's default too
# Bucket names: 3-63 lower-case letters, digits, '.', '-' (AWS's rule; MinIO and Ceph follow it).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def is_url(path) -> bool:
    """Whether ``path`` is an ``s3://`` URL (a str; a Path never is: it would have lost a '/')."""
    return isinstance(path, str) and path[: len(SCHEME)].lower() == SCHEME


def split_url(url: str) -> tuple[str, str]:
    """'s3://bucket/a/b.mp4' -> ('bucket', 'a/b.mp4'); the key may be '' (the whole bucket).

    Raises:
        PosepipeError: not an s3:// URL, or no valid bucket name.
    """
    if not is_url(url):
        raise PosepipeError(url, "not an s3://bucket/key URL")
    bucket, _, key = url[len(SCHEME) :].partition("/")
    if not _BUCKET.fullmatch(bucket):
        raise PosepipeError(
            url, f"{bucket!r} is not a valid bucket name (3-63 characters: a-z, 0-9, '.', '-')"
        )
    return bucket, key


def url_name(url: str) -> str:
    """The last part of the key: 's3://b/x/clip.mp4' -> 'clip.mp4'."""
    return posixpath.basename(split_url(url)[1].rstrip("/"))


def url_parent(url: str) -> str:
    """'s3://b/x/clip.mp4' -> 's3://b/x'; 's3://b/clip.mp4' -> 's3://b'."""
    bucket, key = split_url(url)
    parent = posixpath.dirname(key.rstrip("/"))
    return f"{SCHEME}{bucket}/{parent}" if parent else f"{SCHEME}{bucket}"


def join_url(url: str, *names: str) -> str:
    """'s3://b/x' + 'clip.mp4' -> 's3://b/x/clip.mp4' (one '/' between parts)."""
    return "/".join([url.rstrip("/"), *(n.strip("/") for n in names)])


def client_settings(**given) -> dict:
    """The storage plugin's settings (``endpoint_url``, ``region``, ``access_key``,
    ``secret_key``, ``token``): the given value, else its ``SNAKEMAKE_STORAGE_S3_*`` variable,
    else None (boto3's own lookup: ``AWS_*`` variables, profiles, files)."""
    return {key: given.get(key) or os.environ.get(env) or None for key, env in PLUGIN_ENV.items()}


def make_client(*, retries: int = 3, **settings):
    """A boto3 S3 client with the plugin's settings (see :func:`client_settings`).

    ``retries`` attempts in boto3's standard mode; short time-outs, so that an endpoint that
    does not answer fails in seconds, not minutes.
    """
    import boto3
    from botocore.config import Config

    s = client_settings(**settings)
    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=s["endpoint_url"],
        region_name=s["region"] or session.region_name or DEFAULT_REGION,
        aws_access_key_id=s["access_key"],
        aws_secret_access_key=s["secret_key"],
        aws_session_token=s["token"],
        config=Config(
            retries={"max_attempts": retries, "mode": "standard"}, connect_timeout=5, read_timeout=60
        ),
    )


# The S3 error codes a user can act on, and what to tell them.
_REASONS = {
    "NoSuchBucket": "the bucket does not exist",
    "NoSuchKey": "the object does not exist",
    "404": "the object does not exist",
    "NotFound": "the object does not exist",
    "InvalidAccessKeyId": "the server does not know this access key (check AWS_ACCESS_KEY_ID, AWS_PROFILE "
    "or ~/.aws/credentials)",
    "SignatureDoesNotMatch": "the secret key does not match the access key (check AWS_SECRET_ACCESS_KEY, "
    "AWS_PROFILE or ~/.aws/credentials)",
    "AccessDenied": "access denied: these credentials may not read it",
    "403": "access denied: these credentials may not read it",
    "InvalidBucketName": "the bucket name is not valid",
}


def reason_of(exc: BaseException) -> str:
    """One line saying why an S3 request failed (``exc``: a botocore exception)."""
    from botocore import exceptions as bex

    if isinstance(exc, bex.NoCredentialsError):
        return (
            "no S3 credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE "
            "(~/.aws/credentials)"
        )
    if isinstance(exc, bex.PartialCredentialsError):
        return f"incomplete S3 credentials: {exc} (give both the access key and the secret key)"
    if isinstance(exc, bex.EndpointConnectionError | bex.ConnectTimeoutError):
        url = urlsplit(str(exc.kwargs.get("endpoint_url", "")))
        where = f"{url.scheme}://{url.netloc}" if url.netloc else "the endpoint"  # not the request's path
        return (
            f"cannot connect to the S3 endpoint {where} (is it up? the endpoint is set by "
            "--storage-s3-endpoint-url, SNAKEMAKE_STORAGE_S3_ENDPOINT_URL or AWS_ENDPOINT_URL)"
        )
    if isinstance(exc, bex.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in _REASONS:
            return _REASONS[code]
        return f"S3 error {code}: {error.get('Message') or exc}"
    if isinstance(exc, bex.BotoCoreError):
        return f"S3 request failed: {exc}"
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class StoredObject:
    """One object of a listing: its URL, size in bytes and modification time (seconds)."""

    url: str
    size: int
    mtime: float


def list_objects(
    client, url: str, *, recursive: bool = True, counter: list | None = None
) -> list[StoredObject]:
    """The objects under ``url`` (a "folder": ``url`` + '/'), deeper levels too when ``recursive``.

    One ``ListObjectsV2`` request per page of up to 1000 keys; ``counter`` (a list) gets one
    item appended per request, for tests and benchmarks. Keys ending in '/' (folder markers
    some tools write) are left out.

    Raises:
        PosepipeError: the bucket is missing, access is refused, the endpoint is down.
    """
    from botocore import exceptions as bex

    bucket, key = split_url(url)
    prefix = key.rstrip("/") + "/" if key.strip("/") else ""
    options = {"Bucket": bucket, "Prefix": prefix}
    if not recursive:
        options["Delimiter"] = "/"
    found = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(**options):
            if counter is not None:
                counter.append(1)
            for item in page.get("Contents", []):
                if item["Key"].endswith("/"):
                    continue
                found.append(
                    StoredObject(
                        f"{SCHEME}{bucket}/{item['Key']}", int(item["Size"]), item["LastModified"].timestamp()
                    )
                )
    except (bex.BotoCoreError, bex.ClientError) as exc:
        raise PosepipeError(url, f"cannot list the objects: {reason_of(exc)}") from None
    return found


def matching(objects: list[StoredObject], url: str, patterns: list[str], *, exclude=()) -> list[str]:
    """URLs of ``objects`` (listed under ``url``) whose names match a glob pattern (case ignored),
    sorted; as :func:`posepipe.inputs.find_videos` does for a folder: a name or folder starting
    with '.' is skipped, and so is everything under a URL of ``exclude``."""
    base = url.rstrip("/") + "/"
    globs = [p.lower() for p in patterns]
    skip = [e.rstrip("/") + "/" for e in exclude]
    found = []
    for obj in objects:
        relative = obj.url[len(base) :] if obj.url.startswith(base) else url_name(obj.url)
        if any(part.startswith(".") for part in relative.split("/")):
            continue
        if any(obj.url.startswith(s) for s in skip):
            continue
        if any(fnmatch.fnmatchcase(posixpath.basename(relative).lower(), g) for g in globs):
            found.append(obj.url)
    return sorted(found)


@dataclass
class ObjectIndex:
    """Listings of the prefixes asked about, each made once (:func:`list_objects`).

    ``client``: a boto3 S3 client (made with :func:`make_client` on first use when None).
    ``requests`` counts the listing requests made so far.
    """

    client: object = None
    settings: dict = field(default_factory=dict)
    requests: list = field(default_factory=list)
    _listed: dict = field(default_factory=dict)
    _known: dict = field(default_factory=dict)  # parent URL -> {URL: StoredObject} of its direct children

    def _client(self, url: str):
        from botocore import exceptions as bex

        if self.client is None:
            try:
                self.client = make_client(**self.settings)
            except bex.BotoCoreError as exc:
                raise PosepipeError(url, f"cannot list the objects: {reason_of(exc)}") from None
        return self.client

    def listing(self, url: str, *, recursive: bool) -> list[StoredObject]:
        key = (url.rstrip("/"), recursive)
        if key not in self._listed:
            self._listed[key] = list_objects(
                self._client(url), url, recursive=recursive, counter=self.requests
            )
            for obj in self._listed[key]:  # a recursive listing answers for every level below it
                self._known.setdefault(url_parent(obj.url), {})[obj.url] = obj
            self._known.setdefault(url.rstrip("/"), {})
        return self._listed[key]

    def find(self, url: str, patterns: list[str], *, recursive: bool = False, exclude=()) -> list[str]:
        """URLs of the objects under ``url`` matching ``patterns`` (see :func:`matching`)."""
        return matching(self.listing(url, recursive=recursive), url, patterns, exclude=exclude)

    def get(self, url: str) -> StoredObject | None:
        """The object at ``url`` from the listing of its parent (listed now if not yet), or None."""
        parent = url_parent(url)
        if parent not in self._known:
            self.listing(parent, recursive=False)
        return self._known.get(parent, {}).get(url)

    def exists(self, url: str) -> bool:
        return self.get(url) is not None

    def upload(self, path: str | os.PathLike, url: str) -> None:
        """Store the file ``path`` as the object ``url`` (a run-wide report the workflow writes
        itself, not through a rule).

        Raises:
            PosepipeError: the upload failed (names ``url`` and why).
        """
        from botocore import exceptions as bex

        bucket, key = split_url(url)
        try:
            self._client(url).upload_file(os.fspath(path), bucket, key)
        except (bex.BotoCoreError, bex.ClientError) as exc:
            raise PosepipeError(url, f"cannot store {os.fspath(path)}: {reason_of(exc)}") from None
