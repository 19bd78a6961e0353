"""The local control plane is a real one: ready, complete, authenticating
with certificates and tokens, and enforcing RBAC."""

import json
import subprocess

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException


def test_readyz_answers_ok(kubectl):
    assert kubectl("get", "--raw", "/readyz").stdout == "ok"


def test_api_resources_list_the_builtin_groups(kubectl):
    out = kubectl("api-resources", "-o", "name").stdout.split()
    for resource in ["pods", "configmaps", "deployments.apps", "jobs.batch",
                     "leases.coordination.k8s.io", "events.events.k8s.io",
                     "customresourcedefinitions.apiextensions.k8s.io",
                     "clusterroles.rbac.authorization.k8s.io"]:
        assert resource in out


def test_server_version_is_the_pinned_release(admin_api):
    info = client.VersionApi(admin_api).get_code()
    assert info.git_version == "v1.34.4"


def test_controller_manager_creates_default_service_accounts(kubectl):
    # The service-account controller runs in kube-controller-manager, so the
    # default ServiceAccount appearing proves it is up and signing keys work.
    kubectl("wait", "--for=create", "serviceaccount/default", "-n", "default",
            "--timeout=60s")


def test_operator_identity_is_not_an_admin(operator_api):
    review = client.AuthenticationV1Api(operator_api).create_self_subject_review(
        client.V1SelfSubjectReview())
    user = review.status.user_info
    assert user.username == "llmops-operator"
    assert "system:masters" not in (user.groups or [])


def test_operator_may_manage_configmaps(operator_api):
    api = client.CoreV1Api(operator_api)
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="e2e-operator-cm"),
                              data={"k": "v"})
    api.create_namespaced_config_map("default", body)
    try:
        assert api.read_namespaced_config_map("e2e-operator-cm", "default").data == {"k": "v"}
    finally:
        api.delete_namespaced_config_map("e2e-operator-cm", "default")


@pytest.mark.parametrize("call", [
    lambda core: core.list_namespaced_secret("default"),
    lambda core: core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name="not-allowed"))),
    lambda core: core.list_node(),
])
def test_operator_is_forbidden_outside_its_role(operator_api, call):
    with pytest.raises(ApiException) as err:
        call(client.CoreV1Api(operator_api))
    assert err.value.status == 403
    status = json.loads(err.value.body)
    assert status["reason"] == "Forbidden"
    assert 'User "llmops-operator" cannot' in status["message"]


def test_static_token_authenticates(admin_api, cluster_dir, kubectl):
    token = (cluster_dir / "certs" / "tokens.csv").read_text().splitlines()[0].split(",")[0]
    out = kubectl("--kubeconfig", "/dev/null", "--server",
                  admin_api.configuration.host, "--certificate-authority",
                  str(cluster_dir / "certs" / "ca.crt"), "--token", token,
                  "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout
    assert out == "llmops-token-admin"


def test_anonymous_and_unknown_tokens_are_rejected(admin_api, cluster_dir, kubectl):
    res = kubectl("--kubeconfig", "/dev/null", "--server", admin_api.configuration.host,
                  "--certificate-authority", str(cluster_dir / "certs" / "ca.crt"),
                  "--token", "not-a-token", "get", "namespaces", check=False)
    assert res.returncode != 0
    assert "Unauthorized" in res.stderr or "provide credentials" in res.stderr


def test_cluster_up_is_idempotent(root):
    res = subprocess.run([str(root / "e2e/controlplane/cluster.sh"), "up"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0
    assert "already up" in res.stderr
