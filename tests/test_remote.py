"""Sources named by URL (softreg.io.remote), against a real S3-compatible server on 127.0.0.1:
moto's standalone server, started and stopped by its PID here, as s3fs's own tests do."""

import gzip
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from softreg.config import dump_config, load_config
from softreg.io import remote
from softreg.io.kinds import default_delimiter, source_kind

REPO = Path(__file__).resolve().parent.parent
IRIS = REPO / "data" / "iris.csv"
SECRET = "s3cr3t-never-written-anywhere-1234"
BUCKET = "softreg-tests"
CONFIG = """data:
  source: {source}
  storage_options: {options}
  label: species
  val: 0.0
optim:
  lr: 0.1
  batch_size: 16
  epochs: 5
output:
  plots: false
seed: 0
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _credentials() -> dict[str, str]:
    """The environment the commands run in: S3 credentials as the AWS tools read them, nothing from the home."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    return {**env, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_CONFIG_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true", "MPLBACKEND": "Agg"}


@pytest.fixture(scope="module")
def server():
    """moto's S3 server on a free port of 127.0.0.1 holding the iris data as CSV (plain, gzip,
    zstd) and as a folder of two Parquet files; yields its endpoint; stopped by its PID."""
    import fsspec
    import pandas as pd
    import zstandard

    port = _free_port()
    moto = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
    process = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(endpoint, timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, "moto_server exited on start"
                time.sleep(0.1)
        else:
            raise AssertionError(f"moto_server did not answer on {endpoint} within 30 s")
        fs = fsspec.filesystem("s3", endpoint_url=endpoint, key="testing", secret=SECRET, skip_instance_cache=True)
        fs.mkdir(BUCKET)
        data = IRIS.read_bytes()
        fs.pipe(f"{BUCKET}/iris.csv", data)
        fs.pipe(f"{BUCKET}/iris.csv.gz", gzip.compress(data))
        fs.pipe(f"{BUCKET}/iris.csv.zst", zstandard.ZstdCompressor().compress(data))
        frame = pd.read_csv(IRIS)
        for index, part in enumerate((frame[:70], frame[70:])):
            buffer = io.BytesIO()
            part.to_parquet(buffer, index=False)
            fs.pipe(f"{BUCKET}/iris-parquet/part-{index}.parquet", buffer.getvalue())
        yield endpoint
    finally:
        os.kill(process.pid, 15)
        process.wait(timeout=30)


def softreg(*args, env=None, prelude=""):
    """Run the CLI in a fresh process; (exit code, stdout, stderr)."""
    code = f"{prelude}\nfrom softreg.cli import main\nmain()"
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          env=env or _credentials(), cwd=REPO, timeout=300)
    return done.returncode, done.stdout, done.stderr


def config(tmp_path, source, options, name="c.yaml"):
    path = tmp_path / name
    path.write_text(CONFIG.format(source=source, options=json.dumps(options)))
    return path


def trained(tmp_path, name, source, options):
    """A run trained from ``source``; its directory (the command must succeed)."""
    out = tmp_path / name
    code, _, stderr = softreg("train", "--config", config(tmp_path, source, options, f"{name}.yaml"), "--out", out,
                              "--quiet")
    assert code == 0, stderr
    assert SECRET not in stderr
    return out


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The reference: the same config trained from the local file."""
    return trained(tmp_path_factory.mktemp("local"), "local", IRIS, None)


def _no_secret_in(directory):
    for path in Path(directory).rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("name", ["iris.csv", "iris.csv.gz", "iris.csv.zst", "iris-parquet"])
def test_training_from_s3_gives_the_bits_of_the_local_file(server, local_run, tmp_path, name):
    """Training from s3:// (a CSV, gzip or zstd compressed, or a Parquet folder) writes the model of the local file."""
    run = trained(tmp_path, "s3", f"s3://{BUCKET}/{name}", {"endpoint_url": server})
    assert (run / "model.npz").read_bytes() == (local_run / "model.npz").read_bytes()
    assert json.loads((run / "metrics.json").read_text()) == json.loads((local_run / "metrics.json").read_text())
    _no_secret_in(run)


def test_the_config_saves_the_url_and_its_options_never_a_credential(server, tmp_path):
    """config.yaml keeps data.source and data.storage_options as given; the secret from the environment is nowhere."""
    run = trained(tmp_path, "s3", f"s3://{BUCKET}/iris.csv", {"endpoint_url": server})
    saved = load_config(run / "config.yaml")
    assert saved.data.source == f"s3://{BUCKET}/iris.csv"
    assert saved.data.storage_options == {"endpoint_url": server}
    _no_secret_in(run)


def test_predict_and_evaluate_read_s3_as_a_local_file(server, local_run, tmp_path):
    """predict --input and evaluate --data from S3 (CSV and Parquet folder) print what the local file gives."""
    _, local_predictions, _ = softreg("predict", "--run", local_run, "--input", IRIS)
    _, local_metrics, _ = softreg("evaluate", "--run", local_run, "--data", IRIS, "--json")
    run = trained(tmp_path, "s3", f"s3://{BUCKET}/iris.csv", {"endpoint_url": server})
    for name in ("iris.csv", "iris-parquet"):
        code, predictions, stderr = softreg("predict", "--run", run, "--input", f"s3://{BUCKET}/{name}")
        assert code == 0 and predictions == local_predictions, stderr
        code, metrics, stderr = softreg("evaluate", "--run", run, "--data", f"s3://{BUCKET}/{name}", "--json")
        assert code == 0, stderr
        assert {**json.loads(metrics), "source": None} == {**json.loads(local_metrics), "source": None}
        assert SECRET not in stderr


def test_ingest_from_s3_writes_the_shards_of_the_local_file(server, tmp_path):
    """softreg ingest with an s3:// source writes the cache a local source gives, byte for byte but the manifest."""
    local, remote_cache = tmp_path / "local-cache", tmp_path / "s3-cache"
    code, _, stderr = softreg("ingest", "--config", config(tmp_path, IRIS, None, "l.yaml"), "--cache", local, "-q")
    assert code == 0, stderr
    s3 = config(tmp_path, f"s3://{BUCKET}/iris.csv", {"endpoint_url": server}, "s.yaml")
    code, _, stderr = softreg("ingest", "--config", s3, "--cache", remote_cache, "-q")
    assert code == 0, stderr
    files = sorted(path.relative_to(local) for path in local.rglob("*") if path.is_file())
    assert files == sorted(path.relative_to(remote_cache) for path in remote_cache.rglob("*") if path.is_file())
    for name in files:
        if name != Path("manifest.json"):
            assert (local / name).read_bytes() == (remote_cache / name).read_bytes(), name
    code, stdout, _ = softreg("ingest", "--config", s3, "--cache", remote_cache)
    assert code == 0 and stdout.startswith("up to date")
    _no_secret_in(remote_cache)


def _refused(tmp_path, source, options, env=None, prelude=""):
    code, stdout, stderr = softreg("train", "--config", config(tmp_path, source, options), "--out", tmp_path / "run",
                                   env=env, prelude=prelude)
    assert code == 2 and stdout == "" and len(stderr.strip().splitlines()) == 1, (code, stderr)
    assert SECRET not in stderr and not (tmp_path / "run").exists()
    return stderr


def test_a_bucket_or_key_that_does_not_exist_is_one_line(server, tmp_path):
    """A missing bucket, key or folder: exit 2, one line naming the URL."""
    assert "s3://no-such-bucket/iris.csv: bucket or container not found" in _refused(
        tmp_path, "s3://no-such-bucket/iris.csv", {"endpoint_url": server})
    assert f"s3://{BUCKET}/missing.csv: not found" in _refused(
        tmp_path, f"s3://{BUCKET}/missing.csv", {"endpoint_url": server})
    assert f"s3://{BUCKET}/missing.parquet: not found" in _refused(
        tmp_path, f"s3://{BUCKET}/missing.parquet", {"endpoint_url": server})


def test_an_unreachable_endpoint_is_one_line(tmp_path):
    """A server nobody listens on: exit 2, one line saying it is unreachable."""
    options = {"endpoint_url": f"http://127.0.0.1:{_free_port()}",
               "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 1}}
    assert "unreachable" in _refused(tmp_path, f"s3://{BUCKET}/iris.csv", options)


def test_missing_credentials_are_one_line(server, tmp_path):
    """No credentials in the environment: exit 2, one line saying where they come from."""
    env = {key: value for key, value in _credentials().items()
           if key not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    assert "no credentials found" in _refused(tmp_path, f"s3://{BUCKET}/iris.csv", {"endpoint_url": server}, env)


def test_without_s3fs_one_line_names_the_extra(tmp_path):
    """s3fs not installed: exit 2, one line naming softreg[s3]."""
    stderr = _refused(tmp_path, f"s3://{BUCKET}/iris.csv", None, prelude="import sys; sys.modules['s3fs'] = None")
    assert "softreg[s3]" in stderr


def test_a_credential_in_storage_options_is_refused(tmp_path):
    """data.storage_options naming a secret is a config error: credentials belong in the environment."""
    stderr = _refused(tmp_path, f"s3://{BUCKET}/iris.csv", {"secret": "abc", "endpoint_url": "http://127.0.0.1:1"})
    assert "data.storage_options" in stderr and "'secret' is a credential" in stderr and "abc" not in stderr


def test_an_https_url_with_a_signature_trains_the_local_model(server, local_run, tmp_path):
    """A presigned http:// URL (its query names no format) trains the model of the local file; one that
    does not answer is one line (fsspec's HTTP filesystem reports any refusal as not found)."""
    import fsspec

    fs = fsspec.filesystem("s3", endpoint_url=server, key="testing", secret=SECRET, skip_instance_cache=True)
    url = fs.url(f"{BUCKET}/iris.csv", expires=3600)
    assert url.startswith("http://127.0.0.1") and "?" in url
    run = trained(tmp_path, "http", url, None)
    assert (run / "model.npz").read_bytes() == (local_run / "model.npz").read_bytes()
    code, _, stderr = softreg("predict", "--run", run, "--input", url.replace("iris.csv", "other.csv"))
    assert code == 2 and stderr.rstrip().endswith(": not found") and len(stderr.splitlines()) == 1


def test_a_url_with_a_password_is_refused_without_repeating_it(tmp_path):
    """data.source https://user:password@host/...: a config error that does not print the password."""
    stderr = _refused(tmp_path, "https://user:hunter2@example.invalid/iris.csv", None)
    assert "data.source holds a password" in stderr and "hunter2" not in stderr


def test_a_url_is_told_by_its_name_less_the_compression():
    """s3://b/t.tsv.gz is tab-delimited text; a local path keeps its own suffix, as before."""
    assert remote.is_url("s3://b/t.csv") and remote.is_url("file:///tmp/t.csv") and not remote.is_url("/tmp/t.csv")
    assert source_kind("s3://b/t.tsv.gz") == "delimited" and default_delimiter("s3://b/t.tsv.gz") == "\t"
    assert source_kind("https://host/t.parquet?version=2") == "parquet"
    assert remote.plain_name("data/t.csv.gz") == "data/t.csv.gz"
    assert remote.compression("s3://b/t.csv.zst") == "zstd" and remote.compression("s3://b/t.csv") is None


def test_file_urls_train_the_local_model(local_run, tmp_path):
    """A file:// URL (read through fsspec, a .gz decompressed) trains the model of the plain path."""
    compressed = tmp_path / "iris.csv.gz"
    compressed.write_bytes(gzip.compress(IRIS.read_bytes()))
    for source in (IRIS.as_uri(), compressed.as_uri()):
        run = trained(tmp_path, f"file-{source.endswith('.gz')}", source, None)
        assert (run / "model.npz").read_bytes() == (local_run / "model.npz").read_bytes()


def test_a_config_without_storage_options_saves_the_config_it_always_did(tmp_path):
    """storage_options is written into config.yaml only when set: a run from a path is unchanged."""
    path = tmp_path / "c.yaml"
    path.write_text(f"data:\n  source: {IRIS}\n  label: species\n")
    assert "storage_options" not in dump_config(load_config(path))
    path.write_text("data:\n  source: s3://b/iris.csv\n  storage_options: {anon: true}\n  label: species\n")
    assert "storage_options:\n    anon: true" in dump_config(load_config(path))
