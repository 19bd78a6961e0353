"""`helm install` of the chart runs the operator as a Pod on the test node,
with in-cluster configuration from its service-account token, and that Pod
reconciles resources: the whole path a platform team takes, with only the
kubelet replaced by the test node."""


import pytest
from kubernetes import client

from operator_process import wait_for
from testnode.fixture import test_node  # noqa: F401 -- a fixture

NS = "llmops-helm-operator"
APPS = "llmops-helm-apps"
RELEASE = "ops"


@pytest.fixture(scope="module")
def release(helm, root, crds, test_node, admin_api):
    core = client.CoreV1Api(admin_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=APPS)))
    # One replica: every Pod of the test node shares the host's ports.
    helm("install", RELEASE, str(root / "charts" / "llmops"), "-n", NS, "--create-namespace",
         "--set", "replicas=1", "--set", "crds.install=false",
         "--set-json", f'agent.namespaces=["{APPS}"]')
    yield
    helm("uninstall", RELEASE, "-n", NS, "--wait", check=False)
    for ns in (NS, APPS):
        core.delete_namespace(ns)


def operator_pod(admin_api):
    pods = client.CoreV1Api(admin_api).list_namespaced_pod(
        NS, label_selector="app.kubernetes.io/name=llmops").items
    return pods[0] if pods else None


def ready(pod):
    return pod and any(c.type == "Ready" and c.status == "True"
                       for c in (pod.status.conditions or []))


def test_the_operator_pod_runs_and_becomes_ready(release, admin_api, test_node):
    pod = wait_for(lambda: ready(operator_pod(admin_api)) and operator_pod(admin_api), 90, 0.5)
    assert pod, test_node.output()[-3000:]
    assert pod.spec.node_name == test_node.name
    assert pod.spec.containers[0].security_context.run_as_non_root


def test_the_operator_pod_leads_and_reconciles(release, admin_api, test_node):
    assert wait_for(lambda: ready(operator_pod(admin_api)), 90, 0.5)
    lease = wait_for(lambda: _holder(admin_api), 60, 0.5)
    assert lease.startswith(operator_pod(admin_api).metadata.name)
    api = client.CustomObjectsApi(admin_api)
    api.create_namespaced_custom_object("llmops.dev", "v1alpha1", APPS, "promptversions", {
        "apiVersion": "llmops.dev/v1alpha1", "kind": "PromptVersion",
        "metadata": {"name": "hello-v1"},
        "spec": {"family": "hello", "template": "Hello {{name}}",
                 "variables": [{"name": "name", "required": True}]}})

    def phase():
        obj = api.get_namespaced_custom_object("llmops.dev", "v1alpha1", APPS,
                                               "promptversions", "hello-v1")
        return obj.get("status", {}).get("phase")

    assert wait_for(lambda: phase() == "Ready", 60, 0.5), \
        test_node.log(NS, operator_pod(admin_api).metadata.name, "operator")[-3000:]


def test_the_operator_pod_acts_on_every_example(release, admin_api, kubectl, root):
    assert wait_for(lambda: ready(operator_pod(admin_api)), 90, 0.5)
    kubectl("apply", "-n", APPS, "-f", str(root / "examples"))
    api = client.CustomObjectsApi(admin_api)
    plurals = ["promptversions", "finetunejobs", "ragindexes", "evalruns", "modelendpoints",
               "monitors"]

    def all_observed():
        items = [o for p in plurals for o in api.list_namespaced_custom_object(
            "llmops.dev", "v1alpha1", APPS, p)["items"]]
        return len(items) >= 6 and all(  # the examples, and hello-v1 from above
            o.get("status", {}).get("observedGeneration") == o["metadata"]["generation"]
            for o in items)

    assert wait_for(all_observed, 90, 0.5)


def _holder(admin_api):
    try:
        lease = client.CoordinationV1Api(admin_api).read_namespaced_lease("llmops-operator", NS)
    except client.exceptions.ApiException:
        return None
    return lease.spec.holder_identity
