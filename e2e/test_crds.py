"""The llmops.dev CustomResourceDefinitions on a real API server: they
establish with their short names and category, every field is described,
the examples apply and get their defaults, printer columns show, invalid
resources are refused with messages that name the field and the rule, a
PromptVersion's spec and a started FineTuneJob's spec (except suspend) are
immutable, and spec and status are separate subresources."""

import copy
import json
import subprocess
import sys
import time
import uuid

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

GROUP, VERSION = "llmops.dev", "v1alpha1"
# kind: (plural, short names)
KINDS = {
    "PromptVersion": ("promptversions", ["pmv"]),
    "FineTuneJob": ("finetunejobs", ["ftj"]),
    "RagIndex": ("ragindexes", ["rag"]),
    "EvalRun": ("evalruns", ["evr"]),
    "ModelEndpoint": ("modelendpoints", ["mep"]),
    "Monitor": ("monitors", ["mon"]),
}


def plural(kind):
    return KINDS[kind][0]


# --- fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def k(kubectl, tmp_path_factory):
    """kubectl with a private discovery cache, so a schema applied a moment ago
    is what explain and api-resources see."""
    cache = tmp_path_factory.mktemp("kubectl-cache")

    def run(*args, check=True):
        return kubectl("--cache-dir", str(cache), *args, check=check)

    return run


@pytest.fixture(scope="module")
def crds(k, root):
    """Applies crds/ and waits until every CRD is Established. The CRDs stay
    installed (other suites use them); this module's resources live in its
    own namespace."""
    k("apply", "--server-side", "--force-conflicts", "-f", str(root / "crds"))
    names = [f"{plural(kind)}.{GROUP}" for kind in KINDS]
    k("wait", "--for=condition=Established", "--timeout=60s",
      *[f"crd/{n}" for n in names])
    out = json.loads(k("get", "crd", *names, "-o", "json").stdout)
    return {item["spec"]["names"]["kind"]: item for item in out["items"]}


@pytest.fixture(scope="module")
def ns(admin_api, crds):
    name = f"e2e-crds-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(admin_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


@pytest.fixture(scope="module")
def empty_ns(admin_api, crds):
    """A second namespace, where the examples are created from nothing."""
    name = f"e2e-crds-apply-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(admin_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


@pytest.fixture(scope="module")
def objects(admin_api):
    return client.CustomObjectsApi(admin_api)


def example_path(root, kind):
    return root / "examples" / f"{kind.lower()}.yaml"


def load_example(root, kind):
    return yaml.safe_load(example_path(root, kind).read_text())


@pytest.fixture(scope="module")
def examples(k, root, ns):
    """Every example applied (server-side) into the module's namespace."""
    k("apply", "--server-side", "-n", ns, "-f", str(root / "examples"))
    return {kind: load_example(root, kind) for kind in KINDS}


def get(objects, ns, kind, name):
    return objects.get_namespaced_custom_object(GROUP, VERSION, ns, plural(kind), name)


def create(objects, ns, body):
    return objects.create_namespaced_custom_object(GROUP, VERSION, ns, plural(body["kind"]),
                                                   body)


def patch(objects, ns, kind, name, body):
    return objects.patch_namespaced_custom_object(GROUP, VERSION, ns, plural(kind), name, body)


def patch_status(objects, ns, kind, name, body):
    return objects.patch_namespaced_custom_object_status(GROUP, VERSION, ns, plural(kind),
                                                         name, body)


def rejected(call):
    """Runs call, expects 422 Invalid, returns the API server's message."""
    with pytest.raises(ApiException) as err:
        call()
    assert err.value.status == 422, err.value.body
    return json.loads(err.value.body)["message"]


def fresh(root, kind, name=None):
    body = load_example(root, kind)
    body["metadata"]["name"] = name or f"{kind.lower()}-{uuid.uuid4().hex[:6]}"
    return body


def walk(schema, path):
    """Yields (path, schema) for every named property at every depth."""
    for name, sub in (schema.get("properties") or {}).items():
        yield f"{path}.{name}", sub
        yield from walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


def schema_of(crd):
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


# --- the definitions ---------------------------------------------------------------------------


def test_generated_files_are_current(root):
    """crds/*.yaml are what crds/gen_crds.py writes."""
    r = subprocess.run([sys.executable, str(root / "crds/gen_crds.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_every_crd_is_established(crds):
    assert set(crds) == set(KINDS)
    for kind, crd in crds.items():
        status = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert status.get("Established") == "True", (kind, status)
        assert status.get("NamesAccepted") == "True", (kind, status)
        names = crd["spec"]["names"]
        assert names["shortNames"] == KINDS[kind][1]
        assert names["categories"] == ["llmops"]
        assert crd["spec"]["scope"] == "Namespaced"
        version = crd["spec"]["versions"][0]
        assert version["subresources"] == {"status": {}}
        status_schema = schema_of(crd)["properties"]["status"]["properties"]
        for field in ("phase", "conditions", "observedGeneration"):
            assert field in status_schema, (kind, field)
        cond = status_schema["conditions"]
        assert cond["x-kubernetes-list-type"] == "map"
        assert cond["x-kubernetes-list-map-keys"] == ["type"]


def discovered_resources(admin_api):
    """Every resource the API server's discovery lists: (groupVersion, resource)."""

    def raw(path):
        method, url, headers, _, _ = admin_api.param_serialize(
            "GET", path, header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"])
        response = admin_api.call_api(method, url, headers)
        response.read()
        assert response.status == 200, (path, response.status)
        return json.loads(response.data)

    gvs = ["v1"]
    for group in raw("/apis")["groups"]:
        gvs += [v["groupVersion"] for v in group["versions"]]
    for gv in gvs:
        path = "/api/v1" if gv == "v1" else f"/apis/{gv}"
        for res in raw(path)["resources"]:
            if "/" not in res["name"]:
                yield gv, res


def test_api_resources_lists_the_short_names_without_collisions(k, crds, admin_api):
    lines = k("api-resources", f"--api-group={GROUP}", "--no-headers").stdout.splitlines()
    listed = {}
    for line in lines:
        name, shorts, api_version, namespaced, kind = line.split()
        assert api_version == f"{GROUP}/{VERSION}" and namespaced == "true"
        listed[kind] = (name, shorts.split(","))
    assert listed == KINDS

    ours = [s for _, shorts in KINDS.values() for s in shorts]
    assert len(ours) == len(set(ours))
    taken = {}
    for gv, res in discovered_resources(admin_api):
        if gv.startswith(GROUP + "/"):
            continue
        for word in [res["name"], res.get("singularName")] + (res.get("shortNames") or []):
            if word:
                taken.setdefault(word, f"{res['name']} ({gv})")
    assert len(taken) > 50  # discovery really listed the built-ins
    for kind, (plural_name, shorts) in KINDS.items():
        for word in shorts + [plural_name, kind.lower()]:
            assert word not in taken, f"{kind}: {word} collides with {taken[word]}"


def test_get_by_category_lists_every_kind(k, examples, ns):
    assert k("get", "llmops", "-A").returncode == 0
    out = k("get", "llmops", "-n", ns, "-o", "name").stdout.split()
    for kind, (plural_name, _) in KINDS.items():
        name = examples[kind]["metadata"]["name"]
        assert f"{kind.lower()}.{GROUP}/{name}" in out


def test_every_property_has_a_description(crds):
    missing = []
    for kind, crd in crds.items():
        schema = schema_of(crd)
        assert schema.get("description", "").strip(), kind
        for path, sub in walk(schema, kind):
            if path == f"{kind}.metadata":  # the API server allows only `type` there
                continue
            if not sub.get("description", "").strip():
                missing.append(path)
    assert not missing, missing


def explain(k, what):
    """kubectl explain, retried while the new schema reaches the OpenAPI v3 document."""
    deadline = time.monotonic() + 30
    while True:
        r = k("explain", what, check=False)
        if r.returncode == 0 or time.monotonic() > deadline:
            assert r.returncode == 0, r.stderr
            return r.stdout
        time.sleep(0.5)


@pytest.mark.parametrize("kind", KINDS)
def test_explain_shows_the_descriptions(k, crds, kind):
    spec = schema_of(crds[kind])["properties"]["spec"]
    text = " ".join(explain(k, f"{KINDS[kind][1][0]}.spec").split())
    assert f"KIND: {kind}" in text
    assert " ".join(spec["description"].split()[:6]) in text
    for name, sub in spec["properties"].items():
        assert f"{name} <" in text, name
        assert " ".join(sub["description"].split()[:5]) in text, name
    status = " ".join(explain(k, f"{plural(kind)}.status.conditions").split())
    assert "lastTransitionTime" in status and "observedGeneration" in status


# --- examples ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_example_applies_dry_run_then_for_real(k, root, empty_ns, objects, kind):
    path = example_path(root, kind)
    assert path.read_text().startswith("# "), "each example starts with a comment header"
    body = load_example(root, kind)
    assert body["apiVersion"] == f"{GROUP}/{VERSION}" and body["kind"] == kind
    name = body["metadata"]["name"]
    dry = k("apply", "--server-side", "--dry-run=server", "-n", empty_ns, "-f", str(path))
    assert "serverside-applied (server dry run)" in dry.stdout
    with pytest.raises(ApiException) as err:
        get(objects, empty_ns, kind, name)
    assert err.value.status == 404
    out = k("apply", "--server-side", "-n", empty_ns, "-f", str(path)).stdout
    assert out.strip() == f"{kind.lower()}.{GROUP}/{name} serverside-applied"
    got = get(objects, empty_ns, kind, name)
    assert set(body["spec"]) <= set(got["spec"])


EXPECTED_DEFAULTS = {
    # kind: [(path in spec, value)] — fields the examples leave out
    "PromptVersion": [("variables.1.required", False)],
    "FineTuneJob": [("workers", 1), ("backoffLimit", 3), ("method", "lora"),
                    ("gpusPerWorker", 0), ("suspend", False), ("dataset.skipInvalid", False),
                    ("hyperparameters.seed", 42), ("hyperparameters.gradClip", 1.0),
                    ("hyperparameters.weightDecay", 0)],
    "RagIndex": [("chunking.size", 512), ("index.params.M", 16), ("search.replicas", 1)],
    "EvalRun": [],
    "ModelEndpoint": [("gpus", 0), ("apiKeySecretRef.key", "api-key"),
                      ("model.adapters.0.name", "support-lora")],
    "Monitor": [("alerts.1.severity", "warning"), ("alerts.2.for", "0s"),
                ("alerts.0.severity", "critical")],
}


def dig(value, path):
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


@pytest.mark.parametrize("kind", KINDS)
def test_defaults_come_from_the_schema(examples, objects, ns, kind):
    got = get(objects, ns, kind, examples[kind]["metadata"]["name"])["spec"]
    for path, value in EXPECTED_DEFAULTS[kind]:
        assert dig(got, path) == value, path


def test_defaults_fill_omitted_objects(objects, ns, root):
    """A minimal FineTuneJob and RagIndex get whole defaulted sub-objects."""
    ftj = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "FineTuneJob",
           "metadata": {"name": "minimal-ftj"},
           "spec": {"baseModel": "pvc://models/tiny-gpt2",
                    "dataset": {"train": "file:///data/train.jsonl"},
                    "output": "pvc://models/out"}}
    spec = create(objects, ns, ftj)["spec"]
    assert spec["method"] == "lora" and spec["workers"] == 1 and spec["backoffLimit"] == 3
    assert spec["checkpoint"] == {"intervalSteps": 100, "keep": 3}
    assert spec["hyperparameters"]["epochs"] == 1
    assert spec["hyperparameters"]["schedule"] == "cosine"
    assert spec["dataset"]["format"] == "text" and spec["dataset"]["truncate"] == "truncate"
    assert "lora" not in spec  # method lora without settings: r=8, alpha=8, dropout=0

    rag = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "RagIndex",
           "metadata": {"name": "minimal-rag"},
           "spec": {"sources": [{"inline": {"id": "a", "text": "hello"}}],
                    "embedding": {"model": "pvc://models/tiny-embed"}}}
    spec = create(objects, ns, rag)["spec"]
    assert spec["chunking"] == {"strategy": "fixed", "size": 512, "overlap": 64}
    assert spec["index"] == {"type": "flat", "metric": "cosine"}
    assert spec["embedding"]["batchSize"] == 32 and spec["search"]["replicas"] == 1


MINIMAL = {
    "PromptVersion": {"family": "f", "template": "Hello {{name}}"},
    "FineTuneJob": {"baseModel": "pvc://models/m", "dataset": {"train": "pvc://data/t.jsonl"},
                    "output": "pvc://models/out", "method": "full"},
    "RagIndex": {"sources": [{"uri": "pvc://docs"}], "embedding": {"model": "pvc://models/e"}},
    "EvalRun": {"dataset": {"uri": "file:///data/predictions.jsonl"},
                "metrics": [{"name": "exact_match"}]},
    "ModelEndpoint": {"model": {"uri": "pvc://models/m"}},
    "Monitor": {"target": {"ragIndexRef": {"name": "docs"}}, "metrics": ["query_latency_ms"]},
}


@pytest.mark.parametrize("kind", KINDS)
def test_minimal_resources_are_accepted(objects, ns, kind):
    """Only the required fields: no rule trips over an absent optional field."""
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind,
            "metadata": {"name": f"minimal-{kind.lower()}-2"}, "spec": MINIMAL[kind]}
    assert create(objects, ns, body)["metadata"]["generation"] == 1


def header(output):
    return output.splitlines()[0].split()


@pytest.mark.parametrize("kind", KINDS)
def test_printer_columns(k, crds, examples, ns, kind):
    cols = crds[kind]["spec"]["versions"][0]["additionalPrinterColumns"]
    name = examples[kind]["metadata"]["name"]
    short = KINDS[kind][1][0]
    normal = ["NAME"] + [c["name"].upper() for c in cols if not c.get("priority")]
    wide = ["NAME"] + [c["name"].upper() for c in cols]
    assert "PHASE" in normal and "AGE" in normal
    assert header(k("get", short, name, "-n", ns).stdout) == normal
    assert header(k("get", short, name, "-n", ns, "-o", "wide").stdout) == wide


def test_printer_columns_show_status(k, examples, objects, ns):
    name = examples["EvalRun"]["metadata"]["name"]
    patch_status(objects, ns, "EvalRun", name, {"status": {
        "phase": "Succeeded", "observedGeneration": 1,
        "results": {"rougeL": 0.31, "bleu": 0.07},
        "conditions": [{"type": "Passed", "status": "True", "reason": "ThresholdsMet",
                        "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})
    row = k("get", "evr", name, "-n", ns, "--no-headers").stdout.split()
    assert row[1:4] == ["Succeeded", "True", "tiny-gpt2"]
    assert row[4] == '{"bleu":0.07,"rougeL":0.31}'


# --- invalid resources -------------------------------------------------------------------


def merge(base, change):
    """JSON merge patch (RFC 7386) of change into a copy of base."""
    if not isinstance(change, dict):
        return change
    out = copy.deepcopy(base) if isinstance(base, dict) else {}
    for key, value in change.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


# (kind, merge patch on the example, fragments the API server's message must contain)
INVALID = {
    "ftj-workers-zero": ("FineTuneJob", {"spec": {"workers": 0}}, [
        "spec.workers: Invalid value: 0: spec.workers in body should be greater than or equal "
        "to 1"]),
    "ftj-workers-too-many": ("FineTuneJob", {"spec": {"workers": 65}}, [
        "spec.workers: Invalid value: 65: spec.workers in body should be less than or equal "
        "to 64"]),
    "ftj-method-enum": ("FineTuneJob", {"spec": {"method": "qlora"}}, [
        'spec.method: Unsupported value: "qlora": supported values: "full", "lora"']),
    "ftj-lora-with-full": ("FineTuneJob", {"spec": {"method": "full"}}, [
        'spec.lora: Invalid value: "object": spec.lora is only allowed with spec.method lora']),
    "ftj-output-required": ("FineTuneJob", {"spec": {"output": None}}, [
        "spec.output: Required value"]),
    "ftj-uri-scheme": ("FineTuneJob", {"spec": {"baseModel": "s3://bucket/tiny-gpt2"}}, [
        'spec.baseModel: Invalid value: "s3://bucket/tiny-gpt2": spec.baseModel in body '
        "should match '^(file:///.+|pvc://"]),
    "ftj-uri-dotdot": ("FineTuneJob", {"spec": {"output": "pvc://models/../etc"}}, [
        'spec.output: Invalid value: "string": must not contain `..` path segments']),
    "ftj-validation-split-range": ("FineTuneJob", {"spec": {"dataset": {
        "validationSplit": 0.8}}}, [
        "spec.dataset.validationSplit: Invalid value: 0.8: spec.dataset.validationSplit in "
        "body should be less than or equal to 0.5"]),
    "ftj-validation-and-split": ("FineTuneJob", {"spec": {"dataset": {
        "validation": "file:///data/val.jsonl"}}}, [
        "spec.dataset.validationSplit: Invalid value: \"object\": set at most one of "
        "validation and validationSplit"]),
    "ftj-batch-multiple": ("FineTuneJob", {"spec": {"hyperparameters": {
        "globalBatchSize": 10, "microBatchSize": 4}}}, [
        "spec.hyperparameters.globalBatchSize: Invalid value: \"object\": "
        "hyperparameters.globalBatchSize must be a multiple of hyperparameters.microBatchSize"]),
    "ftj-gpu-in-resources": ("FineTuneJob", {"spec": {"resources": {"limits": {
        "nvidia.com/gpu": 1}}}}, [
        "spec.resources: Invalid value: \"object\": set GPUs with spec.gpusPerWorker"]),
    "ftj-prompt-ref-name": ("FineTuneJob", {"spec": {"dataset": {"promptRef": {
        "name": "Support_Answer"}}}}, [
        'spec.dataset.promptRef.name: Invalid value: "Support_Answer": '
        "spec.dataset.promptRef.name in body should match '^[a-z0-9]"]),
    "pmv-template-and-messages": ("PromptVersion", {"spec": {"template": "Q: {{question}}"}}, [
        'spec: Invalid value: "object": exactly one of spec.template or spec.messages must '
        "be set"]),
    "pmv-neither-template-nor-messages": ("PromptVersion", {"spec": {"messages": None}}, [
        'spec: Invalid value: "object": exactly one of spec.template or spec.messages must '
        "be set"]),
    "pmv-role-enum": ("PromptVersion", {"spec": {"messages": [
        {"role": "tool", "content": "x"}]}}, [
        'spec.messages[0].role: Unsupported value: "tool": supported values: "system", '
        '"user", "assistant"']),
    "pmv-family-pattern": ("PromptVersion", {"spec": {"family": "Support Answer"}}, [
        'spec.family: Invalid value: "Support Answer": spec.family in body should match']),
    "pmv-few-shots-need-examples": ("PromptVersion", {"spec": {"shots": "few"}}, [
        "spec.shots: Invalid value: \"object\": spec.shots `one` needs at least one "
        "spec.examples entry, `few` at least two"]),
    "pmv-duplicate-variable": ("PromptVersion", {"spec": {"variables": [
        {"name": "question"}, {"name": "question"}]}}, [
        "spec.variables[1]: Duplicate value:"]),
    "pmv-required-variable-default": ("PromptVersion", {"spec": {"variables": [
        {"name": "question", "required": True, "default": "x"}]}}, [
        "spec.variables[0].default: Invalid value: \"object\": a required variable cannot "
        "have a default"]),
    "pmv-temperature-range": ("PromptVersion", {"spec": {"parameters": {"temperature": 3}}}, [
        "spec.parameters.temperature: Invalid value: 3: spec.parameters.temperature in body "
        "should be less than or equal to 2"]),
    "rag-no-sources": ("RagIndex", {"spec": {"sources": []}}, [
        "spec.sources: Invalid value: 0: spec.sources in body should have at least 1 items"]),
    "rag-source-one-of": ("RagIndex", {"spec": {"sources": [
        {"uri": "pvc://docs/a.md", "inline": {"id": "a", "text": "b"}}]}}, [
        'spec.sources[0]: Invalid value: "object": set exactly one of uri, configMapRef and '
        "inline"]),
    "rag-overlap-size": ("RagIndex", {"spec": {"chunking": {"size": 64, "overlap": 64}}}, [
        "spec.chunking.overlap: Invalid value: \"object\": spec.chunking.overlap must be "
        "less than spec.chunking.size"]),
    "rag-index-type-enum": ("RagIndex", {"spec": {"index": {"type": "annoy"}}}, [
        'spec.index.type: Unsupported value: "annoy": supported values: "flat", "hnsw", '
        '"ivf"']),
    "rag-embedding-required": ("RagIndex", {"spec": {"embedding": None}}, [
        "spec.embedding: Required value"]),
    "rag-chunk-size-range": ("RagIndex", {"spec": {"chunking": {"size": 8}}}, [
        "spec.chunking.size: Invalid value: 8: spec.chunking.size in body should be greater "
        "than or equal to 16"]),
    "evr-needs-a-metric": ("EvalRun", {"spec": {"metrics": []}}, [
        "spec.metrics: Invalid value: 0: spec.metrics in body should have at least 1 items"]),
    "evr-metrics-required": ("EvalRun", {"spec": {"metrics": None, "thresholds": None}}, [
        "spec.metrics: Required value"]),
    "evr-metric-enum": ("EvalRun", {"spec": {"metrics": [{"name": "wer"}],
                                             "thresholds": None}}, [
        'spec.metrics[0].name: Unsupported value: "wer": supported values: "bleu"']),
    "evr-threshold-unknown-metric": ("EvalRun", {"spec": {"thresholds": {"f1": 0.5}}}, [
        "spec.thresholds: Invalid value: \"object\": spec.thresholds keys must be metric "
        "names listed in spec.metrics"]),
    "evr-llm-judge-needs-judge": ("EvalRun", {"spec": {"metrics": [{"name": "llm_judge"}],
                                                       "thresholds": None}}, [
        "spec.judge: Required value: metric llm_judge needs spec.judge"]),
    "evr-own-baseline": ("EvalRun", {"spec": {"baseline": {"evalRunRef": {
        "name": "__self__"}}}}, [
        'spec.baseline.evalRunRef.name: Invalid value: "object": an EvalRun cannot be its '
        "own baseline"]),
    "evr-endpoint-and-model": ("EvalRun", {"spec": {"target": {
        "model": "pvc://models/tiny-gpt2"}}}, [
        'spec.target: Invalid value: "object": set at most one of target.endpointRef and '
        "target.model"]),
    "mep-weights-sum": ("ModelEndpoint", {"spec": {"variants": [
        {"name": "stable", "weight": 80}, {"name": "next", "weight": 0}]}}, [
        'spec.variants: Invalid value: "object": spec.variants weights must sum to 100']),
    "mep-shadow-unknown-variant": ("ModelEndpoint", {"spec": {"shadow": {
        "variant": "ghost"}}}, [
        'spec.shadow.variant: Invalid value: "object": spec.shadow.variant ghost is not one '
        "of spec.variants"]),
    "mep-shadow-without-variants": ("ModelEndpoint", {"spec": {"variants": None}}, [
        'spec.shadow.variant: Invalid value: "object": spec.shadow.variant next is not one '
        "of spec.variants"]),
    "mep-shadow-gets-live-traffic": ("ModelEndpoint", {"spec": {"variants": [
        {"name": "stable", "weight": 90}, {"name": "next", "weight": 10}]}}, [
        'spec.shadow.variant: Invalid value: "object": the shadow variant must have weight 0']),
    "mep-weight-range": ("ModelEndpoint", {"spec": {"variants": [
        {"name": "stable", "weight": 101}], "shadow": None}}, [
        "spec.variants[0].weight: Invalid value: 101: spec.variants[0].weight in body should "
        "be less than or equal to 100"]),
    "mep-duplicate-variant": ("ModelEndpoint", {"spec": {"variants": [
        {"name": "next", "weight": 100}, {"name": "next", "weight": 0}]}}, [
        "spec.variants[1]: Duplicate value:"]),
    "mep-secret-ref-name": ("ModelEndpoint", {"spec": {"apiKeySecretRef": {
        "name": "API_KEY"}}}, [
        'spec.apiKeySecretRef.name: Invalid value: "API_KEY": spec.apiKeySecretRef.name in '
        "body should match"]),
    "mon-alert-op-enum": ("Monitor", {"spec": {"alerts": [
        {"metric": "error_rate", "op": "==", "value": 1}]}}, [
        'spec.alerts[0].op: Unsupported value: "==": supported values: ">", ">=", "<", "<="']),
    "mon-interval-pattern": ("Monitor", {"spec": {"interval": "1 minute"}}, [
        'spec.interval: Invalid value: "1 minute": spec.interval in body should match '
        "'^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$'"]),
    "mon-interval-minimum": ("Monitor", {"spec": {"interval": "5s"}}, [
        'spec.interval: Invalid value: "string": must be at least 10s']),
    "mon-window-shorter-than-interval": ("Monitor", {"spec": {"interval": "10m",
                                                              "window": "5m"}}, [
        'spec.window: Invalid value: "object": spec.window must be at least spec.interval']),
    "mon-target-one-of": ("Monitor", {"spec": {"target": {"ragIndexRef": {
        "name": "support-docs"}}}}, [
        'spec.target: Invalid value: "object": set exactly one of target.endpointRef and '
        "target.ragIndexRef"]),
    "mon-drift-metric-listed": ("Monitor", {"spec": {"drift": [
        {"metric": "toxicity", "test": "psi", "threshold": 0.2}]}}, [
        'spec.drift: Invalid value: "object": spec.drift metrics must be listed in '
        "spec.metrics"]),
    "mon-drift-test-enum": ("Monitor", {"spec": {"drift": [
        {"metric": "latency_ms", "test": "t-test", "threshold": 0.2}]}}, [
        'spec.drift[0].test: Unsupported value: "t-test"']),
    "mon-alert-metric-known": ("Monitor", {"spec": {"alerts": [
        {"metric": "latency_p99", "op": ">", "value": 1}]}}, [
        'spec.alerts: Invalid value: "object": spec.alerts metrics must be in spec.metrics']),
    "mon-alert-severity-enum": ("Monitor", {"spec": {"alerts": [
        {"metric": "error_rate", "op": ">", "value": 1, "severity": "page"}]}}, [
        'spec.alerts[0].severity: Unsupported value: "page"']),
    "ftj-name-too-long": ("FineTuneJob", {"metadata": {"name": "t" * 56}}, [
        "metadata.name must be a DNS-1035 label of at most 55 characters"]),
    "rag-name-too-long": ("RagIndex", {"metadata": {"name": "r" * 45}}, [
        "metadata.name must be a DNS-1035 label of at most 44 characters"]),
    "mep-name-with-dot": ("ModelEndpoint", {"metadata": {"name": "chat.v1"}}, [
        "metadata.name must be a DNS-1035 label of at most 40 characters"]),
    "mep-variant-named-router": ("ModelEndpoint", {"spec": {"variants": [
        {"name": "router", "weight": 100}], "shadow": None}}, [
        "a variant cannot be named router"]),
    "mon-baseline-one-of": ("Monitor", {"spec": {"baseline": {
        "datasetUri": "file:///data/baseline.jsonl"}}}, [
        'spec.baseline: Invalid value: "object": set exactly one of baseline.window and '
        "baseline.datasetUri"]),
}


@pytest.mark.parametrize("case", INVALID)
def test_invalid_resources_are_refused(root, objects, ns, case):
    kind, change, fragments = INVALID[case]
    name = f"bad-{case}"[:60].rstrip("-")
    body = merge(fresh(root, kind, name), change)
    if kind == "EvalRun" and "baseline" in body["spec"]:
        body["spec"]["baseline"]["evalRunRef"]["name"] = name
    message = rejected(lambda: create(objects, ns, body))
    for fragment in fragments:
        assert fragment in message, message
    with pytest.raises(ApiException) as err:  # nothing was stored
        get(objects, ns, kind, name)
    assert err.value.status == 404


def test_invalid_resources_cover_enough_cases():
    assert len(INVALID) >= 20
    assert {kind for kind, _, _ in INVALID.values()} == set(KINDS)


def test_server_side_apply_reports_the_same_errors(k, root, ns, tmp_path):
    body = merge(fresh(root, "FineTuneJob", "bad-ssa"), {"spec": {"workers": 0}})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(body))
    r = k("apply", "--server-side", "-n", ns, "-f", str(path), check=False)
    assert r.returncode != 0
    assert ("spec.workers: Invalid value: 0: spec.workers in body should be greater than or "
            "equal to 1") in r.stderr


# --- immutability -------------------------------------------------------------------------------


def test_prompt_version_spec_is_immutable(root, objects, ns):
    body = fresh(root, "PromptVersion", "pmv-immutable")
    create(objects, ns, body)
    for change in ({"parameters": {"temperature": 0.7}}, {"shots": "zero"},
                   {"chainOfThought": None}, {"family": "other"}):
        message = rejected(lambda: patch(objects, ns, "PromptVersion", body["metadata"]["name"],
                                         {"spec": change}))
        assert ('spec: Invalid value: "object": spec is immutable: create a new PromptVersion'
                in message), message
    # Aliases are labels: they move freely.
    got = patch(objects, ns, "PromptVersion", "pmv-immutable", {"metadata": {"labels": {
        "llmops.dev/alias-prod": None, "llmops.dev/alias-staging": "true"}}})
    assert got["metadata"]["labels"] == {"llmops.dev/alias-staging": "true"}
    assert got["spec"] == get(objects, ns, "PromptVersion", "pmv-immutable")["spec"]
    # The operator writes status.
    got = patch_status(objects, ns, "PromptVersion", "pmv-immutable", {"status": {
        "phase": "Ready", "contentHash": "sha256:" + "ab" * 32, "observedGeneration": 1}})
    assert got["status"]["phase"] == "Ready"


FTJ_FIXED = "spec: Forbidden: spec is fixed once the job has started (status.startTime is set)"


def test_fine_tune_job_spec_is_fixed_once_started(root, objects, ns):
    name = "ftj-fixed"
    create(objects, ns, fresh(root, "FineTuneJob", name))
    # Before it starts, anything may change (Kueue-style edits included).
    got = patch(objects, ns, "FineTuneJob", name, {"spec": {
        "workers": 2, "nodeSelector": {"pool": "cpu"}, "hyperparameters": {"epochs": 3}}})
    assert got["spec"]["workers"] == 2 and got["spec"]["hyperparameters"]["epochs"] == 3
    patch_status(objects, ns, "FineTuneJob", name, {"status": {"phase": "Pending"}})
    got = patch(objects, ns, "FineTuneJob", name, {"spec": {"workers": 1}})
    assert got["spec"]["workers"] == 1

    # The operator starts it (status subresource, as the operator would).
    got = patch_status(objects, ns, "FineTuneJob", name, {"status": {
        "phase": "Running", "startTime": "2026-01-01T00:00:00Z", "observedGeneration": 3}})
    assert got["status"]["startTime"] == "2026-01-01T00:00:00Z"

    for change in ({"workers": 2}, {"hyperparameters": {"epochs": 5}},
                   {"lora": {"r": 16}}, {"image": "llmops-agent:debug"},
                   {"ttlSecondsAfterFinished": None}, {"nodeSelector": {"pool": "gpu"}},
                   {"method": "full", "lora": None}, {"suspend": True, "workers": 3}):
        message = rejected(lambda: patch(objects, ns, "FineTuneJob", name, {"spec": change}))
        assert FTJ_FIXED in message, (change, message)

    # suspend may change, and labels; the status keeps moving.
    got = patch(objects, ns, "FineTuneJob", name, {"spec": {"suspend": True},
                                                   "metadata": {"labels": {"team": "support"}}})
    assert got["spec"]["suspend"] is True
    got = patch(objects, ns, "FineTuneJob", name, {"spec": {"suspend": False}})
    assert got["spec"]["suspend"] is False
    got = patch_status(objects, ns, "FineTuneJob", name, {"status": {
        "phase": "Running", "progress": {"step": 10, "totalSteps": 40, "loss": 2.5,
                                         "eta": "1m30s"}}})
    assert got["status"]["progress"]["step"] == 10
    # Invalid status from a buggy writer is refused too.
    message = rejected(lambda: patch_status(objects, ns, "FineTuneJob", name, {"status": {
        "phase": "Exploded"}}))
    assert 'status.phase: Unsupported value: "Exploded"' in message


def test_fine_tune_job_rule_covers_every_spec_field(crds):
    """The start rule lists the fields it holds fixed: all of spec but suspend."""
    schema = schema_of(crds["FineTuneJob"])
    (start_rule,) = [r["rule"] for r in schema["x-kubernetes-validations"]
                     if "status.startTime" in r["rule"]]
    for field in schema["properties"]["spec"]["properties"]:
        held = f"self.spec.{field} == oldSelf.spec.{field}" in start_rule
        assert held == (field != "suspend"), field


# --- status subresource --------------------------------------------------------------------


def test_spec_and_status_are_separate(root, objects, ns):
    name = "mep-subresource"
    body = fresh(root, "ModelEndpoint", name)
    body["status"] = {"phase": "Ready", "url": "http://ignored:8000"}
    created = create(objects, ns, body)
    assert "status" not in created  # create ignores status
    generation = created["metadata"]["generation"]

    got = patch_status(objects, ns, "ModelEndpoint", name, {"status": {
        "phase": "Ready", "url": "http://tiny-gpt2.default.svc:8000/v1", "readyReplicas": 1,
        "observedGeneration": generation}})
    assert got["status"]["phase"] == "Ready"

    # A spec update (even one that carries status) leaves status alone.
    current = get(objects, ns, "ModelEndpoint", name)
    current["spec"]["replicas"] = 2
    current["status"]["phase"] = "Degraded"
    current["status"]["readyReplicas"] = 0
    got = objects.replace_namespaced_custom_object(GROUP, VERSION, ns, "modelendpoints", name,
                                                   current)
    assert got["spec"]["replicas"] == 2
    assert got["status"]["phase"] == "Ready" and got["status"]["readyReplicas"] == 1
    assert got["metadata"]["generation"] == generation + 1

    # A status update (even one that carries spec) leaves spec and generation alone.
    got = patch_status(objects, ns, "ModelEndpoint", name, {
        "spec": {"replicas": 7}, "status": {"readyReplicas": 2}})
    assert got["spec"]["replicas"] == 2 and got["status"]["readyReplicas"] == 2
    assert got["metadata"]["generation"] == generation + 1
    got = get(objects, ns, "ModelEndpoint", name)
    assert got["spec"]["replicas"] == 2 and got["status"]["phase"] == "Ready"
