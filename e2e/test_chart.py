"""The Helm chart (charts/llmops) against the real local control plane.

Lint (also --strict) and the values schema; what `helm template` renders for
each toggle (CRDs from crds/, ServiceMonitor, NetworkPolicy, watchNamespace,
pod security); a server-side dry run of the rendered manifests; the rendered
operator arguments accepted by bin/llmops-operator; and, after a real
`helm install`, that the RBAC it grants is what the operator and the agent
Pods need and no more (`kubectl auth can-i --as=system:serviceaccount:...`).
No Pod runs here (no kubelet): the Deployment stays unavailable, which is
fine for these tests. A `helm upgrade` must update the CRDs, and
`helm uninstall` must keep them."""

import json
import subprocess
import time
import uuid

import pytest
import yaml

NS = "llmops-chart-e2e"
TEAM_NS = "llmops-chart-e2e-team"
OTHER_NS = "llmops-chart-e2e-other"
RELEASE = "chart-e2e"
KINDS = ["promptversions", "finetunejobs", "ragindexes", "evalruns", "modelendpoints", "monitors"]


# --- helpers ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def chart(root):
    return root / "charts" / "llmops"


def sets(values):
    out = []
    for key, value in values.items():
        out += ["--set-json", f"{key}={json.dumps(value)}"]
    return out


@pytest.fixture(scope="module")
def render(helm, chart):
    """helm template -> list of documents (dicts); values as --set-json."""

    def run(namespace=NS, **values):
        proc = helm("template", RELEASE, str(chart), "--namespace", namespace, *sets(values))
        return [d for d in yaml.safe_load_all(proc.stdout) if d]

    return run


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def one(docs, kind, name=None):
    found = [d for d in by_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def repo_crds(root):
    docs = []
    for path in sorted((root / "crds").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def operator_container(docs):
    dep = one(docs, "Deployment")
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    return dep, container


def arg_map(args):
    out = {}
    for a in args:
        key, _, value = a.partition("=")
        out[key] = value
    return out


# --- lint and the values schema ------------------------------------------------------


@pytest.mark.parametrize("strict", [False, True])
def test_lint_clean(helm, chart, strict):
    proc = helm("lint", str(chart), *(["--strict"] if strict else []))
    assert "1 chart(s) linted, 0 chart(s) failed" in proc.stdout
    assert "[ERROR]" not in proc.stdout and "[WARNING]" not in proc.stdout, proc.stdout


@pytest.mark.parametrize("value,where", [
    ('replicas="two"', "/replicas"),
    ('logFormat="xml"', "/logFormat"),
    ('logLevel="verbose"', "/logLevel"),
    ("workers=0", "/workers"),
    ("shutdownGracePeriodSeconds=-1", "/shutdownGracePeriodSeconds"),
    ('image.pullPolicy="Sometimes"', "/image/pullPolicy"),
    ("leaderElection.leaseDuration=15", "/leaderElection/leaseDuration"),
    ('leaderElection.renewDeadline="ten seconds"', "/leaderElection/renewDeadline"),
    ("metrics.port=70000", "/metrics/port"),
    ('watchNamespace="Not_A_Namespace"', "/watchNamespace"),
    ("serviceMonitor.enabled=\"yes\"", "/serviceMonitor/enabled"),
    ("replica=2", "additional properties 'replica'"),
])
def test_invalid_values_fail_lint_and_template(helm, chart, value, where):
    for cmd in (["lint", "--strict", str(chart)], ["template", "x", str(chart)]):
        proc = helm(*cmd, "--set-json", value, check=False)
        assert proc.returncode != 0, f"helm {cmd[0]} accepted {value}"
        assert where in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_replicas_need_leader_election(helm, chart, render):
    proc = helm("template", "x", str(chart), "--set", "leaderElection.enabled=false", check=False)
    assert proc.returncode != 0 and "leaderElection.enabled" in proc.stderr
    docs = render(replicas=1, leaderElection={"enabled": False})
    _, container = operator_container(docs)
    assert "--leader-elect" not in container["args"]
    assert not by_kind(docs, "PodDisruptionBudget"), "no PDB for a single replica"


# --- what helm template renders ----------------------------------------------------


def test_default_render(render, root):
    docs = render()
    kinds = sorted(d["kind"] for d in docs)
    expected = {"Deployment": 1, "Service": 1, "ServiceAccount": 2, "ClusterRole": 4,
                "ClusterRoleBinding": 1, "Role": 1, "RoleBinding": 2, "PodDisruptionBudget": 1,
                "CustomResourceDefinition": len(repo_crds(root))}
    assert {k: kinds.count(k) for k in set(kinds)} == expected
    for d in docs:
        labels = d["metadata"]["labels"]
        for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance",
                    "app.kubernetes.io/version", "app.kubernetes.io/managed-by",
                    "app.kubernetes.io/part-of", "helm.sh/chart"):
            assert key in labels, f"{d['kind']} {d['metadata']['name']} lacks label {key}"
        if d["kind"] not in ("CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"):
            assert d["metadata"].get("namespace"), f"{d['kind']} has no namespace"
    svc = one(docs, "Service")
    assert svc["spec"]["ports"] == [{"name": "metrics", "port": 8080, "targetPort": "metrics",
                                     "protocol": "TCP"}]
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1


def test_crds_rendered_from_repository(render, root):
    """The chart's CRDs are the crds/ files, plus labels and annotations."""
    source = repo_crds(root)
    assert source, "crds/ has no CRDs yet"
    rendered = {d["metadata"]["name"]: d for d in by_kind(render(), "CustomResourceDefinition")}
    assert sorted(rendered) == sorted(d["metadata"]["name"] for d in source)
    for want in source:
        got = rendered[want["metadata"]["name"]]
        ann = got["metadata"]["annotations"]
        assert ann["helm.sh/resource-policy"] == "keep"
        assert ann["argocd.argoproj.io/sync-wave"] == "-1"
        assert ann["argocd.argoproj.io/sync-options"] == "ServerSideApply=true,Prune=false,Delete=false"
        for meta in (got["metadata"], want["metadata"]):
            meta.pop("labels", None)
            meta.pop("annotations", None)
        assert got == want, f"rendered {want['metadata']['name']} differs from crds/"
    assert not by_kind(render(crds={"install": False}), "CustomResourceDefinition")
    for crd in by_kind(render(crds={"keep": False}), "CustomResourceDefinition"):
        assert "helm.sh/resource-policy" not in crd["metadata"]["annotations"]
        assert crd["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] == "ServerSideApply=true"


def test_service_monitor_toggle(render):
    assert not by_kind(render(), "ServiceMonitor")
    docs = render(serviceMonitor={"enabled": True, "interval": "15s", "labels": {"release": "prom"}})
    sm = one(docs, "ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "prom"
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] == "metrics" and endpoint["interval"] == "15s"
    svc = one(docs, "Service")
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["spec"]["selector"].items()


def test_network_policy_toggle(render):
    assert not by_kind(render(), "NetworkPolicy")
    source = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    docs = render(networkPolicy={"enabled": True, "metricsFrom": [source],
                                 "apiServer": {"cidrs": ["10.0.0.1/32"], "ports": [443]}})
    np = one(docs, "NetworkPolicy")
    assert np["spec"]["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = np["spec"]["ingress"]
    assert sorted(p["port"] for p in ingress["ports"]) == [8080, 8081]
    assert ingress["from"] == [source]
    api, dns = np["spec"]["egress"]
    assert api == {"ports": [{"port": 443, "protocol": "TCP"}], "to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}]}
    assert {p["port"] for p in dns["ports"]} == {53}
    dep, _ = operator_container(docs)
    assert np["spec"]["podSelector"]["matchLabels"].items() <= \
        dep["spec"]["template"]["metadata"]["labels"].items()


def test_watch_namespace_switches_to_role(render):
    cluster = render()
    assert one(cluster, "ClusterRole", f"{RELEASE}-llmops-operator")
    assert one(cluster, "ClusterRoleBinding", f"{RELEASE}-llmops-operator")
    _, container = operator_container(cluster)
    assert not any(a.startswith("--namespace") for a in container["args"])

    scoped = render(watchNamespace=TEAM_NS)
    names = [d["metadata"]["name"] for d in by_kind(scoped, "ClusterRole")]
    assert f"{RELEASE}-llmops-operator" not in names
    assert not by_kind(scoped, "ClusterRoleBinding")
    role = one(scoped, "Role", f"{RELEASE}-llmops-operator")
    assert role["metadata"]["namespace"] == TEAM_NS
    binding = one(scoped, "RoleBinding", f"{RELEASE}-llmops-operator")
    assert binding["metadata"]["namespace"] == TEAM_NS
    assert binding["roleRef"]["kind"] == "Role"
    assert binding["subjects"][0]["namespace"] == NS
    _, container = operator_container(scoped)
    assert f"--namespace={TEAM_NS}" in container["args"]
    # The leader Lease stays in the release namespace.
    assert one(scoped, "Role", f"{RELEASE}-llmops-operator-leader-election")["metadata"]["namespace"] == NS
    # Agents get their ServiceAccount and binding in the watched namespace too.
    agent_ns = {d["metadata"]["namespace"] for d in by_kind(scoped, "RoleBinding")
                if d["metadata"]["name"] == f"{RELEASE}-llmops-agent"}
    assert agent_ns == {NS, TEAM_NS}


def test_operator_pod_security_and_probes(render):
    dep, c = operator_container(render())
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    assert spec["replicas"] == 2
    assert c["command"] == ["llmops-operator"]
    args = arg_map(c["args"])
    assert "--leader-elect" in args
    assert args["--leader-election-namespace"] == NS
    assert args["--leader-election-id"] == "llmops-operator"
    assert args["--metrics-bind-address"] == ":8080"
    assert args["--health-probe-bind-address"] == ":8081"
    assert args["--log-format"] == "json" and args["--log-level"] == "info"
    assert args["--workers"] == "2"
    # Pod-level and container-level hardening.
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 65532
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 65532
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    # Probes on the probe port; grace period = shutdown grace + margin.
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"metrics": 8080, "probes": 8081}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "probes"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "probes"}
    assert args["--shutdown-grace-period"] == "30s"
    assert pod["terminationGracePeriodSeconds"] == 35
    assert c["resources"]["requests"] and c["resources"]["limits"]
    # Soft spread across nodes.
    (tsc,) = pod["topologySpreadConstraints"]
    assert tsc["topologyKey"] == "kubernetes.io/hostname"
    assert tsc["whenUnsatisfiable"] == "ScheduleAnyway"
    assert tsc["labelSelector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert c["image"] == f"llmops/llmops-operator:{dep['metadata']['labels']['app.kubernetes.io/version']}"


def test_values_reach_the_deployment(render):
    docs = render(
        image={"repository": "registry.example/llmops", "tag": "v9", "pullPolicy": "Always"},
        imagePullSecrets=[{"name": "regcred"}], nodeSelector={"pool": "system"},
        tolerations=[{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
        affinity={"nodeAffinity": {}}, podAnnotations={"a": "b"}, priorityClassName="high",
        logLevel="debug", logFormat="text", workers=8, shutdownGracePeriodSeconds=60,
        extraArgs=["--kube-api-qps=20"], extraEnv=[{"name": "X", "value": "1"}])
    dep, c = operator_container(docs)
    pod = dep["spec"]["template"]["spec"]
    assert c["image"] == "registry.example/llmops:v9" and c["imagePullPolicy"] == "Always"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["nodeSelector"] == {"pool": "system"}
    assert pod["tolerations"][0]["key"] == "dedicated"
    assert pod["affinity"] == {"nodeAffinity": {}}
    assert pod["priorityClassName"] == "high"
    assert dep["spec"]["template"]["metadata"]["annotations"] == {"a": "b"}
    args = arg_map(c["args"])
    assert args["--log-level"] == "debug" and args["--log-format"] == "text"
    assert args["--workers"] == "8" and args["--shutdown-grace-period"] == "60s"
    assert "--kube-api-qps=20" in c["args"]
    assert pod["terminationGracePeriodSeconds"] == 65
    assert {"name": "X", "value": "1"} in c["env"]
    digest = "sha256:" + "a" * 64
    _, c = operator_container(render(image={"repository": "r/op", "digest": digest}))
    assert c["image"] == f"r/op@{digest}"


def test_operator_accepts_rendered_args(render, root):
    """Every rendered flag exists and every value parses: with a kubeconfig
    that does not exist the operator gets past option parsing (exit 2 on a
    bad option) and stops at connecting (exit 1)."""
    for values in ({}, {"watchNamespace": TEAM_NS, "logFormat": "text", "logLevel": "debug"}):
        _, c = operator_container(render(**values))
        proc = subprocess.run([str(root / "bin/llmops-operator"), *c["args"],
                               "--kubeconfig", "/nonexistent/kubeconfig"],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 1, f"rc {proc.returncode}: {proc.stderr}"
        assert "cannot start" in proc.stderr, proc.stderr


# --- against the API server ------------------------------------------------------------


def ensure_namespace(kubectl, name):
    """Creates the namespace, first waiting out an earlier run's deletion."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        phase = kubectl("get", "namespace", name, "-o", "jsonpath={.status.phase}", check=False)
        if phase.returncode != 0:
            if kubectl("create", "namespace", name, check=False).returncode == 0:
                return
        elif phase.stdout == "Active":
            return
        time.sleep(0.5)
    pytest.fail(f"namespace {name} is still terminating")


def test_server_side_dry_run(helm, chart, kubectl, controlplane_bin):
    """The API server accepts every rendered object (CRDs, RBAC, Deployment,
    NetworkPolicy...). CRDs that are not installed yet are dry-run too."""
    for ns in (NS, TEAM_NS):
        ensure_namespace(kubectl, ns)
    proc = helm("template", RELEASE, str(chart), "--namespace", NS,
                "--set", "networkPolicy.enabled=true", "--set-json", f'agent.namespaces=["{TEAM_NS}"]')
    run = subprocess.run([str(controlplane_bin / "kubectl"), "apply", "--dry-run=server", "-f", "-"],
                         input=proc.stdout, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "(server dry run)" in run.stdout
    created = [line for line in run.stdout.splitlines() if "server dry run" in line]
    assert len(created) == len([d for d in yaml.safe_load_all(proc.stdout) if d])


@pytest.fixture(scope="module")
def installed(helm, chart, kubectl, root):
    """A real helm install. Afterwards the cluster is left as found: the
    CRDs are deleted if the install created them, or stripped of the Helm
    ownership it took (--take-ownership) if they were already there."""
    crd_names = [d["metadata"]["name"] for d in repo_crds(root)]
    pre = [n for n in crd_names if kubectl("get", "crd", n, check=False).returncode == 0]
    for ns in (NS, TEAM_NS, OTHER_NS):
        ensure_namespace(kubectl, ns)
    args = ["install", RELEASE, str(chart), "--namespace", NS,
            "--set-json", f'agent.namespaces=["{TEAM_NS}"]']
    if pre:
        args.append("--take-ownership")
    proc = helm(*args)
    yield {"crds": crd_names, "install": proc}
    helm("uninstall", RELEASE, "--namespace", NS, check=False)
    for name in crd_names:
        if name in pre:
            kubectl("annotate", "crd", name, "meta.helm.sh/release-name-",
                    "meta.helm.sh/release-namespace-", "helm.sh/resource-policy-",
                    "argocd.argoproj.io/sync-wave-", "argocd.argoproj.io/sync-options-",
                    "llmops.dev/chart-test-", check=False)
            kubectl("label", "crd", name, "helm.sh/chart-", "app.kubernetes.io/instance-",
                    "app.kubernetes.io/version-", "app.kubernetes.io/managed-by-", check=False)
        else:
            kubectl("delete", "crd", name, "--ignore-not-found", "--wait=true", check=False)
    for ns in (NS, TEAM_NS, OTHER_NS):
        kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=false", check=False)


def can_i(kubectl, sa_ns, sa, verb, resource, namespace, subresource=None):
    args = ["auth", "can-i", verb, resource, f"--as=system:serviceaccount:{sa_ns}:{sa}",
            "--namespace", namespace]
    if subresource:
        args.append(f"--subresource={subresource}")
    proc = kubectl(*args, check=False)
    answer = proc.stdout.strip()
    assert answer in ("yes", "no"), f"can-i {verb} {resource}: {proc.stdout} {proc.stderr}"
    return answer == "yes"


OPERATOR_SA = f"{RELEASE}-llmops-operator"
AGENT_SA = "llmops-agent"
CRUD = ["get", "list", "watch", "create", "update", "patch", "delete"]

# What the operator does, by resource: (verbs, resource, subresource).
OPERATOR_NEEDS = (
    [(["get", "list", "watch", "update", "patch", "delete"], f"{k}.llmops.dev", None)
     for k in KINDS]
    + [(["update", "patch"], f"{k}.llmops.dev", "status") for k in KINDS]
    + [(["update", "patch"], f"{k}.llmops.dev", "finalizers") for k in KINDS]
    + [(CRUD, r, None) for r in ("pods", "services", "configmaps", "deployments.apps", "jobs.batch")]
    + [(["create", "patch"], "events", None), (["create", "patch"], "events.events.k8s.io", None)]
    + [(["get"], "secrets", None)]
)


def test_install_creates_everything(installed, kubectl):
    assert "STATUS: deployed" in installed["install"].stdout
    assert "kubectl get llmops -A" in installed["install"].stdout  # NOTES.txt
    dep = yaml.safe_load(kubectl("-n", NS, "get", "deployment", OPERATOR_SA, "-o", "yaml").stdout)
    assert dep["spec"]["replicas"] == 2
    for name in installed["crds"]:
        crd = yaml.safe_load(kubectl("get", "crd", name, "-o", "yaml").stdout)
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        established = [c for c in crd["status"].get("conditions", []) if c["type"] == "Established"]
        assert established and established[0]["status"] == "True", name
    # The llmops category answers (empty) across namespaces.
    deadline = time.monotonic() + 20
    while True:
        proc = kubectl("get", "llmops", "-A", check=False)
        if proc.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("verbs,resource,sub", OPERATOR_NEEDS,
                         ids=[f"{r}{'/' + s if s else ''}" for _, r, s in OPERATOR_NEEDS])
def test_operator_rbac_sufficient(installed, kubectl, verbs, resource, sub):
    for verb in verbs:
        for ns in (TEAM_NS, OTHER_NS):
            assert can_i(kubectl, NS, OPERATOR_SA, verb, resource, ns, sub), \
                f"operator cannot {verb} {resource}{'/' + sub if sub else ''} in {ns}"


def test_operator_rbac_leases_and_limits(installed, kubectl):
    for verb in CRUD:
        assert can_i(kubectl, NS, OPERATOR_SA, verb, "leases.coordination.k8s.io", NS)
    # Leases only in its own namespace; llmops kinds are never created (delete
    # is for ttlSecondsAfterFinished); Secrets read one by one only.
    assert not can_i(kubectl, NS, OPERATOR_SA, "create", "leases.coordination.k8s.io", TEAM_NS)
    assert not can_i(kubectl, NS, OPERATOR_SA, "create", "finetunejobs.llmops.dev", TEAM_NS)
    for verb in ("list", "watch", "create", "update", "delete"):
        assert not can_i(kubectl, NS, OPERATOR_SA, verb, "secrets", TEAM_NS)
    assert not can_i(kubectl, NS, OPERATOR_SA, "create", "serviceaccounts", TEAM_NS)
    assert not can_i(kubectl, NS, OPERATOR_SA, "create", "clusterroles.rbac.authorization.k8s.io", TEAM_NS)
    assert not can_i(kubectl, NS, OPERATOR_SA, "delete", "nodes", TEAM_NS)


@pytest.mark.parametrize("ns", [NS, TEAM_NS])
def test_agent_rbac_least_privilege(installed, kubectl, ns):
    sa = kubectl("-n", ns, "get", "serviceaccount", AGENT_SA, check=False)
    assert sa.returncode == 0, f"no agent ServiceAccount in {ns}"
    for kind in KINDS:
        for verb in ("get", "list", "watch"):
            assert can_i(kubectl, ns, AGENT_SA, verb, f"{kind}.llmops.dev", ns)
        assert can_i(kubectl, ns, AGENT_SA, "patch", f"{kind}.llmops.dev", ns, "status")
        assert not can_i(kubectl, ns, AGENT_SA, "patch", f"{kind}.llmops.dev", ns)
        assert not can_i(kubectl, ns, AGENT_SA, "delete", f"{kind}.llmops.dev", ns)
    assert can_i(kubectl, ns, AGENT_SA, "patch", "finetunejobs.llmops.dev", ns, "status")
    assert can_i(kubectl, ns, AGENT_SA, "get", "promptversions.llmops.dev", ns)
    assert can_i(kubectl, ns, AGENT_SA, "create", "events", ns)
    assert not can_i(kubectl, ns, AGENT_SA, "delete", "pods", ns)
    assert not can_i(kubectl, ns, AGENT_SA, "get", "secrets", ns)
    assert not can_i(kubectl, ns, AGENT_SA, "list", "secrets", ns)
    assert not can_i(kubectl, ns, AGENT_SA, "create", "pods", ns)
    # Bound per namespace: nothing in a namespace it was not given.
    assert not can_i(kubectl, ns, AGENT_SA, "patch", "finetunejobs.llmops.dev", OTHER_NS, "status")
    assert not can_i(kubectl, ns, AGENT_SA, "get", "promptversions.llmops.dev", OTHER_NS)


def test_upgrade_updates_crds_and_uninstall_keeps_them(installed, helm, chart, kubectl):
    """The point of CRDs as templates: `helm upgrade` changes them (here an
    extra annotation stands in for a schema change), and `helm uninstall`
    leaves them (resource-policy keep)."""
    marker = uuid.uuid4().hex[:12]
    helm("upgrade", RELEASE, str(chart), "--namespace", NS, "--reuse-values",
         "--set", f"crds.annotations.llmops\\.dev/chart-test={marker}", "--set", "logLevel=debug")
    for name in installed["crds"]:
        crd = yaml.safe_load(kubectl("get", "crd", name, "-o", "yaml").stdout)
        assert crd["metadata"]["annotations"].get("llmops.dev/chart-test") == marker, name
    dep = yaml.safe_load(kubectl("-n", NS, "get", "deployment", OPERATOR_SA, "-o", "yaml").stdout)
    assert "--log-level=debug" in dep["spec"]["template"]["spec"]["containers"][0]["args"]

    helm("uninstall", RELEASE, "--namespace", NS)
    assert kubectl("-n", NS, "get", "deployment", OPERATOR_SA, check=False).returncode != 0
    for name in installed["crds"]:
        assert kubectl("get", "crd", name, check=False).returncode == 0, f"{name} was deleted"
