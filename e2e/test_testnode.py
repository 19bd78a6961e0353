"""The test node against the real control plane: it registers a Ready Node,
the real scheduler, job and deployment controllers work with it, and the Pods
bound to it run as local processes with the env, volumes, service-account
token, probes, restarts and deletion semantics of kubelet.

Each test works in its own namespace and waits with deadlines."""

import json
import socket
import time
import uuid
from pathlib import Path

import pytest

from testnode.fixture import start_test_node, test_node, wait_for  # noqa: F401
from testnode.testnode import ApiError, dig, parse_time

# Short intervals keep the module quick; the defaults are kubelet's (10 s).
TEST_NODE_OPTIONS = {"args": ["--heartbeat-interval", "1", "--status-interval", "2",
                              "--restart-backoff-max", "1"]}


# --- helpers ---------------------------------------------------------------


@pytest.fixture
def kube(test_node):
    return test_node.kube


@pytest.fixture
def ns(kube, request):
    """A fresh namespace, ready for Pods (its default ServiceAccount and
    kube-root-ca.crt exist); deleted, without waiting, afterwards."""
    name = f"tn-{request.node.name[5:][:40].replace('_', '-').strip('-')}-{uuid.uuid4().hex[:4]}"
    kube.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                     "metadata": {"name": name}})

    def ready():
        try:
            kube.get(f"/api/v1/namespaces/{name}/serviceaccounts/default")
            kube.get(f"/api/v1/namespaces/{name}/configmaps/kube-root-ca.crt")
            return True
        except ApiError:
            return False

    wait_for(ready, 30, what=f"namespace {name} to be ready")
    yield name
    try:
        kube.delete(f"/api/v1/namespaces/{name}")
    except ApiError:
        pass


def pod_body(name, command, restart="Never", **spec):
    container = {"name": spec.pop("container_name", "main"), "image": "busybox:1.36",
                 "command": command}
    container.update(spec.pop("container", {}))
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"restartPolicy": restart, "containers": [container],
                     "terminationGracePeriodSeconds": 5}}
    body["spec"].update(spec)
    return body


def sh(script):
    return ["/bin/sh", "-c", script]


def create_pod(kube, ns, body):
    return kube.post(f"/api/v1/namespaces/{ns}/pods", body)


def get_pod(kube, ns, name):
    try:
        return kube.get(f"/api/v1/namespaces/{ns}/pods/{name}")
    except ApiError as e:
        if e.status == 404:
            return None
        raise


def wait_pod(kube, ns, name, predicate, timeout=30, what="condition"):
    last = {}

    def check():
        pod = get_pod(kube, ns, name)
        last["pod"] = pod
        return pod if pod and predicate(pod) else None

    try:
        return wait_for(check, timeout, 0.1, f"pod {ns}/{name}: {what}")
    except pytest.fail.Exception:
        raise pytest.fail.Exception(
            f"pod {ns}/{name}: no {what} after {timeout}s; status: "
            f"{json.dumps((last.get('pod') or {}).get('status'), indent=1)}") from None


def phase_is(*phases):
    return lambda p: dig(p, "status", "phase") in phases


def condition(obj, kind):
    for c in dig(obj, "status", "conditions", default=[]):
        if c["type"] == kind:
            return c
    return {}


def ready(pod):
    return condition(pod, "Ready").get("status") == "True"


def cstatus(pod, name="main"):
    for s in dig(pod, "status", "containerStatuses", default=[]):
        if s["name"] == name:
            return s
    return {}


def pid_of(pod, name="main"):
    return int(cstatus(pod, name)["containerID"].removeprefix("testnode://"))


def pid_gone(pid):
    return not Path(f"/proc/{pid}").exists()


# --- the node ----------------------------------------------------------------


def test_node_registers_ready_with_capacity_and_renews_lease(test_node, kube):
    node = kube.get(f"/api/v1/nodes/{test_node.name}")
    assert condition(node, "Ready")["status"] == "True"
    assert node["status"]["capacity"]["nvidia.com/gpu"] == "0"
    assert node["status"]["allocatable"]["cpu"] == "8"
    assert node["status"]["allocatable"]["memory"] == "32Gi"
    assert node["status"]["allocatable"]["pods"] == "110"
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == test_node.name
    assert labels["kubernetes.io/os"] == "linux"
    assert {"type": "InternalIP", "address": "127.0.0.1"} in node["status"]["addresses"]
    assert not dig(node, "spec", "taints")

    lease_path = ("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/"
                  + test_node.name)
    lease = kube.get(lease_path)
    assert lease["spec"]["holderIdentity"] == test_node.name
    assert lease["spec"]["leaseDurationSeconds"] == 40
    assert lease["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]
    first = parse_time(lease["spec"]["renewTime"])
    wait_for(lambda: parse_time(kube.get(lease_path)["spec"]["renewTime"]) > first, 10,
             what="the lease to be renewed")
    beat = parse_time(condition(node, "Ready")["lastHeartbeatTime"])
    wait_for(lambda: parse_time(condition(kube.get(f"/api/v1/nodes/{test_node.name}"),
                                          "Ready")["lastHeartbeatTime"]) > beat, 10,
             what="a Ready heartbeat in the node status")


# --- running pods ------------------------------------------------------------


def test_pod_is_scheduled_runs_and_succeeds(test_node, kube, ns):
    create_pod(kube, ns, pod_body("hello", sh("echo hi; exit 0")))
    pod = wait_pod(kube, ns, "hello", phase_is("Succeeded", "Failed"), what="completion")
    assert pod["status"]["phase"] == "Succeeded"
    assert pod["spec"]["nodeName"] == test_node.name  # bound by kube-scheduler
    assert condition(pod, "PodScheduled")["status"] == "True"
    assert pod["status"]["podIP"] == pod["status"]["hostIP"] == "127.0.0.1"
    state = cstatus(pod)["state"]["terminated"]
    assert (state["exitCode"], state["reason"]) == (0, "Completed")
    assert cstatus(pod)["containerID"].startswith("testnode://")
    assert condition(pod, "Ready")["reason"] == "PodCompleted"
    assert test_node.log(ns, "hello", "main") == "hi\n"


def test_nonzero_exit_fails_the_pod(kube, ns):
    create_pod(kube, ns, pod_body("exit3", sh("echo failing >&2; exit 3")))
    pod = wait_pod(kube, ns, "exit3", phase_is("Succeeded", "Failed"), what="completion")
    assert pod["status"]["phase"] == "Failed"
    state = cstatus(pod)["state"]["terminated"]
    assert (state["exitCode"], state["reason"]) == (3, "Error")


def test_unknown_command_is_a_start_error(kube, ns):
    create_pod(kube, ns, pod_body("nocmd", ["no-such-program", "--flag"]))
    pod = wait_pod(kube, ns, "nocmd", phase_is("Failed"), what="phase Failed")
    state = cstatus(pod)["state"]["terminated"]
    assert (state["exitCode"], state["reason"]) == (128, "StartError")
    assert "no-such-program" in state["message"] and "absolute paths" in state["message"]


def test_gpu_pod_waits_for_a_node_with_gpus(test_node, kube, ns):
    body = pod_body("gpu", sh('echo "gpus=$CUDA_VISIBLE_DEVICES"'),
                    container={"resources": {"limits": {"nvidia.com/gpu": "1"}}})
    create_pod(kube, ns, body)
    pod = wait_pod(kube, ns, "gpu", lambda p: condition(p, "PodScheduled").get("reason")
                   == "Unschedulable", what="Unschedulable from the scheduler")
    assert "nvidia.com/gpu" in condition(pod, "PodScheduled")["message"]
    assert not pod["spec"].get("nodeName")

    with start_test_node(name="llmops-test-node-gpu", gpus=2,
                         args=["--no-provisioner", "--heartbeat-interval", "1"]) as gpu_node:
        node = kube.get(f"/api/v1/nodes/{gpu_node.name}")
        assert node["status"]["capacity"]["nvidia.com/gpu"] == "2"
        pod = wait_pod(kube, ns, "gpu", phase_is("Succeeded", "Failed"), what="completion")
        assert pod["status"]["phase"] == "Succeeded"
        assert pod["spec"]["nodeName"] == gpu_node.name
        assert gpu_node.log(ns, "gpu", "main") == "gpus=0\n"


def test_env_literal_fieldref_resources_configmap_and_secret(test_node, kube, ns):
    kube.post(f"/api/v1/namespaces/{ns}/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
        "data": {"model": "tiny-llama", "FROM_ENVFROM": "yes"}})
    kube.post(f"/api/v1/namespaces/{ns}/secrets", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
        "stringData": {"token": "s3cr3t"}})
    env = [
        {"name": "LITERAL", "value": "hello"},
        {"name": "EXPANDED", "value": "$(LITERAL)-world $$(LITERAL)"},
        {"name": "MY_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "MY_POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "MY_NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "MY_APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "MEM_MI", "valueFrom": {"resourceFieldRef": {
            "resource": "limits.memory", "divisor": "1Mi"}}},
        {"name": "CPU_REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu"}}},
        {"name": "MODEL", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "model"}}},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
        {"name": "MISSING", "valueFrom": {"secretKeyRef": {
            "name": "creds", "key": "nope", "optional": True}}},
    ]
    body = pod_body("env", ["/usr/bin/env"], container={
        "env": env, "envFrom": [{"configMapRef": {"name": "settings"}}],
        "resources": {"limits": {"memory": "256Mi", "cpu": "1500m"},
                      "requests": {"memory": "256Mi", "cpu": "1500m"}}})
    body["metadata"]["labels"] = {"app": "envtest"}
    create_pod(kube, ns, body)
    pod = wait_pod(kube, ns, "env", phase_is("Succeeded", "Failed"), what="completion")
    assert pod["status"]["phase"] == "Succeeded"
    lines = set(test_node.log(ns, "env", "main").splitlines())
    for expected in ["LITERAL=hello", "EXPANDED=hello-world $(LITERAL)", f"MY_NS={ns}",
                     "MY_POD=env", f"MY_NODE={test_node.name}", "MY_IP=127.0.0.1",
                     "MY_APP=envtest", "MEM_MI=256", "CPU_REQ=2", "MODEL=tiny-llama",
                     "TOKEN=s3cr3t", "FROM_ENVFROM=yes", "HOSTNAME=env",
                     "KUBERNETES_SERVICE_HOST=127.0.0.1",
                     f"KUBERNETES_SERVICE_PORT={kube.port}"]:
        assert expected in lines
    assert not any(line.startswith(("MISSING=", "KUBECONFIG=")) for line in lines)


def test_missing_configmap_is_a_clear_config_error(kube, ns):
    body = pod_body("nocm", ["/bin/true"], container={"env": [{"name": "X", "valueFrom": {
        "configMapKeyRef": {"name": "absent", "key": "k"}}}]})
    create_pod(kube, ns, body)
    pod = wait_pod(kube, ns, "nocm", lambda p: dig(cstatus(p), "state", "waiting", "reason")
                   == "CreateContainerConfigError", what="CreateContainerConfigError")
    assert 'configmap "absent" not found' in cstatus(pod)["state"]["waiting"]["message"]
    assert pod["status"]["phase"] == "Pending"
    kube.post(f"/api/v1/namespaces/{ns}/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "absent"},
        "data": {"k": "v"}})
    wait_pod(kube, ns, "nocm", phase_is("Succeeded"), what="success once the ConfigMap exists")


def test_service_account_token_is_real_and_mounted_in_cluster_paths(test_node, kube, ns):
    kube.post(f"/api/v1/namespaces/{ns}/serviceaccounts", {
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader"}})
    kube.post(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "pod-reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]})
    kube.post(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "pod-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}]})
    script = """
SA=/var/run/secrets/kubernetes.io/serviceaccount
API=https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT
call() { curl -sS --cacert $SA/ca.crt -H "Authorization: Bearer $(cat $SA/token)" "$@"; }
call -H 'Content-Type: application/json' -X POST \
  -d '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}' \
  $API/apis/authentication.k8s.io/v1/selfsubjectreviews | tr -d '\\n'; echo
NS=$(cat $SA/namespace)
echo "get-self=$(call -o /dev/null -w '%{http_code}' $API/api/v1/namespaces/$NS/pods/$HOSTNAME)"
echo "list-secrets=$(call -o /dev/null -w '%{http_code}' $API/api/v1/namespaces/$NS/secrets)"
"""
    create_pod(kube, ns, pod_body("whoami", sh(script), serviceAccountName="reader"))
    pod = wait_pod(kube, ns, "whoami", phase_is("Succeeded", "Failed"), what="completion")
    out = test_node.log(ns, "whoami", "main")
    assert pod["status"]["phase"] == "Succeeded", out
    review = json.loads(out.splitlines()[0])
    user = review["status"]["userInfo"]
    assert user["username"] == f"system:serviceaccount:{ns}:reader"
    assert user["extra"]["authentication.kubernetes.io/pod-name"] == ["whoami"]
    assert user["extra"]["authentication.kubernetes.io/pod-uid"] == [pod["metadata"]["uid"]]
    assert "get-self=200" in out  # allowed by the RoleBinding
    assert "list-secrets=403" in out  # RBAC denies the rest
    # The mount is private to the container: nothing at that path on the host.
    assert not Path("/var/run/secrets/kubernetes.io/serviceaccount/token").exists()


def test_no_token_without_automount(test_node, kube, ns):
    create_pod(kube, ns, pod_body(
        "noauto", sh("ls /var/run/secrets/kubernetes.io/serviceaccount 2>/dev/null | wc -l"),
        automountServiceAccountToken=False))
    wait_pod(kube, ns, "noauto", phase_is("Succeeded"), what="success")
    assert test_node.log(ns, "noauto", "main").strip() == "0"


# --- volumes -----------------------------------------------------------------


def test_volumes_emptydir_shared_configmap_secret_downward_and_init(test_node, kube, ns):
    kube.post(f"/api/v1/namespaces/{ns}/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
        "data": {"a.yaml": "alpha: 1\n"}})
    kube.post(f"/api/v1/namespaces/{ns}/secrets", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec"},
        "stringData": {"pw": "hunter2"}})
    scratch = "/tmp/llmops-e2e-scratch"
    body = {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "vols", "labels": {"tier": "e2e"}},
            "spec": {
                "restartPolicy": "Never",
                "volumes": [{"name": "scratch", "emptyDir": {}},
                            {"name": "cfg", "configMap": {"name": "cfg"}},
                            {"name": "sec", "secret": {"secretName": "sec"}},
                            {"name": "info", "downwardAPI": {"items": [{
                                "path": "labels",
                                "fieldRef": {"fieldPath": "metadata.labels"}}]}}],
                "initContainers": [{"name": "init", "image": "busybox", "command": sh(
                    f"echo from-init > {scratch}/init"),
                    "volumeMounts": [{"name": "scratch", "mountPath": scratch}]}],
                "containers": [
                    {"name": "writer", "image": "busybox", "command": sh(
                        f"cat {scratch}/init; echo shared-data > {scratch}/msg.tmp && "
                        f"mv {scratch}/msg.tmp {scratch}/msg"),
                     "volumeMounts": [{"name": "scratch", "mountPath": scratch}]},
                    {"name": "reader", "image": "busybox", "command": sh(
                        f"while [ ! -f {scratch}/msg ]; do sleep 0.1; done; cat {scratch}/msg; "
                        "cat /etc/llmops/a.yaml /etc/creds/pw; echo; cat /etc/info/labels; echo; "
                        "touch /etc/llmops/x 2>/dev/null || echo read-only"),
                     "volumeMounts": [{"name": "scratch", "mountPath": scratch},
                                      {"name": "cfg", "mountPath": "/etc/llmops"},
                                      {"name": "sec", "mountPath": "/etc/creds"},
                                      {"name": "info", "mountPath": "/etc/info"}]}]}}
    create_pod(kube, ns, body)
    pod = wait_pod(kube, ns, "vols", phase_is("Succeeded", "Failed"), what="completion")
    assert pod["status"]["phase"] == "Succeeded", test_node.log(ns, "vols", "reader")
    init = pod["status"]["initContainerStatuses"][0]["state"]["terminated"]
    first_main = min(parse_time(s["state"]["terminated"]["startedAt"])
                     for s in pod["status"]["containerStatuses"])
    assert parse_time(init["finishedAt"]) <= first_main
    assert test_node.log(ns, "vols", "writer") == "from-init\n"
    assert test_node.log(ns, "vols", "reader").splitlines() == [
        "shared-data", "alpha: 1", "hunter2", 'tier="e2e"', "read-only"]
    assert not Path(scratch, "msg").exists()  # the emptyDir was mounted privately


def test_pvc_data_persists_across_pods(test_node, kube, ns):
    kube.post(f"/api/v1/namespaces/{ns}/persistentvolumeclaims", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "1Gi"}}}})
    wait_for(lambda: dig(kube.get(f"/api/v1/namespaces/{ns}/persistentvolumeclaims/data"),
                         "status", "phase") == "Bound", 30, what="the PVC to be bound")
    volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
    mounts = {"volumeMounts": [{"name": "data", "mountPath": "/tmp/llmops-e2e-data"}]}
    create_pod(kube, ns, pod_body("write", sh("echo persisted > /tmp/llmops-e2e-data/file"),
                                  volumes=volumes, container=mounts))
    wait_pod(kube, ns, "write", phase_is("Succeeded"), what="success")
    create_pod(kube, ns, pod_body("read", sh("cat /tmp/llmops-e2e-data/file"), volumes=volumes,
                                  container=mounts))
    wait_pod(kube, ns, "read", phase_is("Succeeded"), what="success")
    assert test_node.log(ns, "read", "main") == "persisted\n"
    assert (test_node.pvc_dir(ns, "data") / "file").read_text() == "persisted\n"



def test_headless_service_gives_pods_their_cluster_dns_names(test_node, kube, ns):
    """A Pod with hostname and subdomain is reachable by name from another Pod
    once a headless Service of that name selects it, as with CoreDNS; a Pod
    the Service does not select gets no name."""
    kube.post(f"/api/v1/namespaces/{ns}/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "grp"},
        "spec": {"clusterIP": "None", "selector": {"app": "dns"},
                 "ports": [{"name": "p", "port": 5000}]}})
    for name, labels in (("member", {"app": "dns"}), ("outsider", {})):
        body = pod_body(name, sh("sleep 30"), hostname=name, subdomain="grp")
        body["metadata"]["labels"] = labels
        create_pod(kube, ns, body)
    lookup = (f"until getent hosts member.grp.{ns}.svc; do sleep 0.2; done; "
              f"getent hosts member.grp.{ns}.svc.cluster.local member.grp; "
              f"getent hosts outsider.grp.{ns}.svc || echo no outsider")
    create_pod(kube, ns, pod_body("lookup", ["/bin/sh", "-c", lookup]))
    pod = wait_pod(kube, ns, "lookup", phase_is("Succeeded", "Failed"), what="completion")
    assert pod["status"]["phase"] == "Succeeded"
    lines = test_node.log(ns, "lookup", "main").splitlines()
    assert [ln.split()[0] for ln in lines[:3]] == ["127.0.0.1"] * 3
    assert lines[0].split()[1:] == [f"member.grp.{ns}.svc.cluster.local",
                                    f"member.grp.{ns}.svc", f"member.grp.{ns}", "member.grp"]
    assert lines[-1] == "no outsider"
# --- restarts and probes -----------------------------------------------------


def test_on_failure_restarts_until_success(test_node, kube, ns):
    script = ("n=$(cat /work/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /work/n; "
              "echo attempt $n; [ $n -ge 3 ]")
    create_pod(kube, ns, pod_body(
        "flaky", sh(script), restart="OnFailure",
        volumes=[{"name": "work", "emptyDir": {}}],
        container={"volumeMounts": [{"name": "work", "mountPath": "/work"}]}))
    pod = wait_pod(kube, ns, "flaky", phase_is("Succeeded", "Failed"), what="completion")
    assert pod["status"]["phase"] == "Succeeded"
    s = cstatus(pod)
    assert s["restartCount"] == 2
    assert s["state"]["terminated"]["exitCode"] == 0
    assert s["lastState"]["terminated"]["exitCode"] == 1
    assert test_node.log(ns, "flaky", "main").split() == [
        "attempt", "1", "attempt", "2", "attempt", "3"]


def test_always_restarts_a_crashing_container(kube, ns):
    create_pod(kube, ns, pod_body("crash", sh("exit 1"), restart="Always"))
    pod = wait_pod(kube, ns, "crash", lambda p: cstatus(p).get("restartCount", 0) >= 3 and
                   dig(cstatus(p), "state", "waiting", "reason") == "CrashLoopBackOff",
                   what="restartCount >= 3 in CrashLoopBackOff")
    assert pod["status"]["phase"] == "Running"
    assert cstatus(pod)["lastState"]["terminated"]["exitCode"] == 1
    assert not ready(pod)


def test_deployment_pod_gets_ready_only_once_listening(test_node, kube, ns):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    probe = {"periodSeconds": 1, "failureThreshold": 1}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                     "terminationGracePeriodSeconds": 5,
                     "containers": [
                         {"name": "http", "image": "python:3",
                          "command": sh(f"sleep 2; exec /usr/bin/python3 -m http.server "
                                        f"{port} --bind 127.0.0.1"),
                          "ports": [{"name": "http", "containerPort": port}],
                          "readinessProbe": dict(probe, httpGet={"path": "/", "port": "http"})},
                         {"name": "side", "image": "busybox", "command": ["/bin/sleep", "1000"],
                          "readinessProbe": dict(probe, tcpSocket={"port": port})}]}}}}
    kube.post(f"/apis/apps/v1/namespaces/{ns}/deployments", deployment)

    def running_pod():
        pods = kube.get(f"/api/v1/namespaces/{ns}/pods",
                        params={"labelSelector": "app=web"})["items"]
        return next((p for p in pods if dig(p, "status", "phase") == "Running"), None)

    pod = wait_for(running_pod, 30, 0.05, "a Running web pod")
    name = pod["metadata"]["name"]
    assert not ready(pod)  # running, but the server is not listening yet
    assert pod["spec"]["containers"][0]["readinessProbe"]
    pod = wait_pod(kube, ns, name, ready, 30, "Ready")
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass  # it is listening now
    assert all(s["ready"] for s in pod["status"]["containerStatuses"])
    wait_for(lambda: dig(kube.get(f"/apis/apps/v1/namespaces/{ns}/deployments/web"),
                         "status", "availableReplicas") == 1, 30,
             what="the Deployment to be available")
    # Scale to zero: the pods end (SIGTERM) and go away.
    kube.patch(f"/apis/apps/v1/namespaces/{ns}/deployments/web", {"spec": {"replicas": 0}})
    wait_for(lambda: get_pod(kube, ns, name) is None, 30, what="the pod to be deleted")


# --- deletion ----------------------------------------------------------------


def test_deleting_a_pod_terms_it_and_removes_the_object(test_node, kube, ns):
    create_pod(kube, ns, pod_body("sleeper", ["/bin/sleep", "1000"], restart="Always",
                                  terminationGracePeriodSeconds=30))
    pod = wait_pod(kube, ns, "sleeper", ready, what="Ready")
    pid, uid = pid_of(pod), pod["metadata"]["uid"]
    assert not pid_gone(pid)
    assert test_node.sandbox_dir(uid).is_dir()
    start = time.monotonic()
    kube.delete(f"/api/v1/namespaces/{ns}/pods/sleeper")
    wait_for(lambda: get_pod(kube, ns, "sleeper") is None, 10, what="the pod to be deleted")
    assert time.monotonic() - start < 5  # SIGTERM ended it; no need for the 30 s grace
    assert pid_gone(pid)
    assert not test_node.sandbox_dir(uid).exists()
    assert test_node.pod_dir(ns, "sleeper").is_dir()  # logs are kept


def test_process_ignoring_sigterm_is_killed_after_the_grace_period(test_node, kube, ns):
    create_pod(kube, ns, pod_body("stubborn", sh("trap '' TERM; echo trapped; sleep 1000"),
                                  restart="Always", terminationGracePeriodSeconds=2))
    pod = wait_pod(kube, ns, "stubborn", ready, what="Ready")
    test_node.wait_log(ns, "stubborn", "main", "trapped")
    pid = pid_of(pod)
    start = time.monotonic()
    kube.delete(f"/api/v1/namespaces/{ns}/pods/stubborn")
    time.sleep(1)
    assert not pid_gone(pid)  # SIGTERM is ignored...
    wait_for(lambda: get_pod(kube, ns, "stubborn") is None, 15, what="the pod to be deleted")
    elapsed = time.monotonic() - start
    assert 1.8 <= elapsed < 8, elapsed  # ...until SIGKILL at the end of the grace period
    assert pid_gone(pid)


# --- controllers -------------------------------------------------------------


def test_job_runs_to_complete(test_node, kube, ns):
    kube.post(f"/apis/batch/v1/namespaces/{ns}/jobs", {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
        "spec": {"completions": 1, "backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox",
                            "command": sh("echo job-done")}]}}}})
    job = wait_for(lambda: (lambda j: j if condition(j, "Complete").get("status") == "True"
                            else None)(kube.get(f"/apis/batch/v1/namespaces/{ns}/jobs/once")),
                   30, what="the Job to be Complete")
    assert job["status"]["succeeded"] == 1
    pods = kube.get(f"/api/v1/namespaces/{ns}/pods",
                    params={"labelSelector": "job-name=once"})["items"]
    assert "job-done" in test_node.log(ns, pods[0]["metadata"]["name"], "main")


# --- restarts of the test node itself -----------------------------------------


def test_restarted_node_cleans_up_pods_deleted_while_it_was_down(kube, ns):
    name = "llmops-test-node-restart"
    opts = dict(name=name, on_exit="notready", args=["--no-provisioner"])
    node = start_test_node(**opts)
    try:
        for pod_name, policy in (("never", "Never"), ("always", "Always")):
            create_pod(kube, ns, pod_body(pod_name, ["/bin/sleep", "1000"], restart=policy,
                                          nodeName=name))
        pids = {n: pid_of(wait_pod(kube, ns, n, ready, what="Ready")) for n in ("never",
                                                                               "always")}
        always_uid = get_pod(kube, ns, "always")["metadata"]["uid"]
        assert node.stop() == 0
        assert all(pid_gone(p) for p in pids.values())  # it ended its processes
        assert condition(kube.get(f"/api/v1/nodes/{name}"), "Ready")["status"] == "False"
        kube.delete(f"/api/v1/namespaces/{ns}/pods/always")
        assert get_pod(kube, ns, "always")["metadata"]["deletionTimestamp"]  # no kubelet yet
        node = start_test_node(**opts)
        wait_for(lambda: get_pod(kube, ns, "always") is None, 15,
                 what="the pod deleted while the node was down to go away")
        assert not node.sandbox_dir(always_uid).exists()
        pod = wait_pod(kube, ns, "never", phase_is("Failed"), what="phase Failed")
        assert "restarted" in cstatus(pod)["state"]["terminated"]["message"]
    finally:
        node.stop()
        try:
            kube.delete(f"/api/v1/nodes/{name}")
        except ApiError:
            pass
