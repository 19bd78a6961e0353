"""The operator and agent binaries: --help, --version and argument errors."""

import signal
import subprocess

import pytest


@pytest.fixture(scope="session")
def version(root):
    return subprocess.run(["git", "-C", str(root), "describe", "--tags", "--always",
                           "--dirty"], capture_output=True, text=True).stdout.strip() \
        or "unknown"


@pytest.mark.parametrize("name", ["llmops-operator", "llmops-agent"])
def test_version_comes_from_git_describe(root, name, version):
    out = subprocess.run([str(root / "bin" / name), "--version"], capture_output=True,
                         text=True, check=True).stdout
    assert out == f"{name} {version}\n"


@pytest.mark.parametrize("name", ["llmops-operator", "llmops-agent"])
def test_help_lists_the_options(root, name):
    out = subprocess.run([str(root / "bin" / name), "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert out.startswith(f"Usage: {name}")
    assert "--version" in out and "--help" in out


def test_operator_rejects_an_unknown_option_naming_it(root):
    res = subprocess.run([str(root / "bin/llmops-operator"), "--bogus"],
                         capture_output=True, text=True)
    assert res.returncode == 2
    assert "unknown option '--bogus'" in res.stderr


@pytest.mark.parametrize("args, message", [
    (["--workers", "0"], "--workers: 0 is outside [1, 256]"),
    (["--leader-election-lease-duration", "fast"], "is not a duration"),
    (["--shutdown-grace-period", "3days"], "has an unknown unit (use ms, s, m or h)"),
])
def test_operator_rejects_bad_settings_naming_them(root, args, message):
    res = subprocess.run([str(root / "bin/llmops-operator")] + args, capture_output=True,
                         text=True)
    assert res.returncode == 2
    assert message in res.stderr


def test_operator_without_any_kubeconfig_says_what_it_tried(root, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    res = subprocess.run([str(root / "bin/llmops-operator"), "--metrics-bind-address", "0",
                          "--health-probe-bind-address", "0"], capture_output=True,
                         text=True, env=env, timeout=30)
    assert res.returncode == 1
    assert "no kubeconfig" in res.stderr
    assert "KUBERNETES_SERVICE_HOST" in res.stderr


def test_operator_rejects_a_bad_log_level(root):
    res = subprocess.run([str(root / "bin/llmops-operator"), "--log-level", "loud"],
                         capture_output=True, text=True)
    assert res.returncode == 2
    assert "unknown log level 'loud'" in res.stderr


def test_operator_logs_json_and_exits_cleanly_on_sigterm(root):
    proc = subprocess.Popen([str(root / "bin/llmops-operator"), "--log-format", "json",
                             "--metrics-bind-address", "127.0.0.1:0",
                             "--health-probe-bind-address", "127.0.0.1:0"],
                            stderr=subprocess.PIPE, text=True)
    first = proc.stderr.readline()
    assert '"logger":"operator"' in first and '"level":"info"' in first
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


@pytest.mark.parametrize("role, kind", [("index", "RagIndex"), ("eval", "EvalRun"),
                                        ("no-such-role", "FineTuneJob")])
def test_agent_role_not_available_exits_64(root, role, kind):
    res = subprocess.run([str(root / "bin/llmops-agent"), role, "--resource",
                          f"{kind}/default/x"], capture_output=True, text=True)
    assert res.returncode == 64
    assert role in res.stderr


@pytest.mark.parametrize("args, message", [
    (["finetune"], "give exactly one of --resource and -f"),
    (["finetune", "--resource", "FineTuneJob/x"], "is not KIND/NAMESPACE/NAME"),
    (["eval", "--resource", "FineTuneJob/a/b"], "works for EvalRun, not FineTuneJob"),
    (["finetune", "-f", "/nonexistent.yaml"], "/nonexistent.yaml"),
])
def test_agent_argument_errors_say_what_is_wrong(root, args, message):
    res = subprocess.run([str(root / "bin/llmops-agent")] + args, capture_output=True,
                         text=True)
    assert res.returncode == 2
    assert message in res.stderr


def test_agent_reads_a_spec_file_without_a_cluster(root, tmp_path):
    spec = tmp_path / "job.yaml"
    spec.write_text("apiVersion: llmops.dev/v1alpha1\nkind: FineTuneJob\n"
                    "metadata: {name: local}\nspec: {baseModel: file:///m}\n")
    res = subprocess.run([str(root / "bin/llmops-agent"), "finetune", "-f", str(spec)],
                         capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    # Parsed and dispatched: the role refuses the incomplete spec as bad input.
    assert res.returncode == 65
    assert "spec.output is required" in res.stderr


def test_agent_role_help_names_the_kind(root):
    out = subprocess.run([str(root / "bin/llmops-agent"), "index", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "--resource RagIndex/NAMESPACE/NAME" in out
