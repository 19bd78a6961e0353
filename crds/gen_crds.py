#!/usr/bin/env python3
"""Generates crds/<plural>.llmops.dev.yaml, one CustomResourceDefinition per kind.

The YAML files are what gets applied and are the source of truth for the API
(docs/api-conventions.md fixes the field names); this script only keeps the
six files consistent: the shared pieces (conditions, references, URIs,
durations, the workload fields) are written once here. Edit this file, then
run it and commit both:

    build/venv/bin/python crds/gen_crds.py          # rewrite crds/*.yaml
    build/venv/bin/python crds/gen_crds.py --check  # exit 1 if they are stale

Every property carries a description (what `kubectl explain` shows); defaults
live in the schema; cross-field rules and immutability are CEL
(`x-kubernetes-validations`). e2e/test_crds.py checks all of it against a
real API server.
"""

import sys
from pathlib import Path

import yaml

GROUP = "llmops.dev"
VERSION = "v1alpha1"
CATEGORY = "llmops"
HERE = Path(__file__).resolve().parent

# --- shared patterns --------------------------------------------------------

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# Artifacts: pvc://<claim>/<path> in a cluster, file:///<absolute path> for
# local runs (docs/api-conventions.md, ARCHITECTURE.md). Object storage
# schemes are added here when the agent can read them.
URI = (r"^(file:///.+|pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?"
       r"(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(/.*)?)$")
URI_HELP = ("Artifact URI: `pvc://<claim>/<path>` (a PersistentVolumeClaim in the "
            "resource's namespace) or `file:///<absolute path>` (local runs).")
DURATION = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
DURATION_HELP = "A duration such as `30s`, `5m`, `1h30m` (units ms, s, m, h)."
QUANTITY = (r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
            r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")
METRIC_NAME = r"^[a-z][a-z0-9_]*$"
EVAL_METRICS = ["bleu", "chrf", "rouge1", "rouge2", "rougeL", "rougeLsum", "meteor",
                "bertscore", "perplexity", "exact_match", "accuracy", "precision",
                "recall", "f1", "pass_at_k", "llm_judge"]


# --- schema builders ---------------------------------------------------------

def rule(expr, message=None, message_expression=None, field_path=None, reason=None):
    r = {"rule": expr}
    if message:
        r["message"] = message
    if message_expression:
        r["messageExpression"] = message_expression
    if field_path:
        r["fieldPath"] = field_path
    if reason:
        r["reason"] = reason
    return r


def _extra(s, default=None, rules=None, **kw):
    if default is not None:
        s["default"] = default
        if not isinstance(default, (dict, list)):  # kubectl explain does not show defaults
            shown = str(default).lower() if isinstance(default, bool) else default
            s["description"] = f"{s['description']} Defaults to `{shown}`."
    for k, v in kw.items():
        if v is not None:
            s[k] = v
    if rules:
        s["x-kubernetes-validations"] = rules
    return s


def string(desc, max_length=253, min_length=None, pattern=None, enum=None, default=None,
           fmt=None, rules=None):
    s = {"description": desc, "type": "string"}
    if enum is None:
        _extra(s, minLength=min_length, maxLength=max_length, pattern=pattern, format=fmt)
    else:
        s["enum"] = enum
    return _extra(s, default, rules)


def integer(desc, minimum=None, maximum=None, default=None, fmt="int32", rules=None):
    s = {"description": desc, "type": "integer", "format": fmt}
    return _extra(s, default, rules, minimum=minimum, maximum=maximum)


def int64(desc, minimum=None, maximum=None, default=None, rules=None):
    return integer(desc, minimum, maximum, default, "int64", rules)


def number(desc, minimum=None, maximum=None, default=None, exclusive_minimum=None,
           exclusive_maximum=None, rules=None):
    s = {"description": desc, "type": "number"}
    return _extra(s, default, rules, minimum=minimum, maximum=maximum,
                  exclusiveMinimum=exclusive_minimum, exclusiveMaximum=exclusive_maximum)


def boolean(desc, default=None):
    return _extra({"description": desc, "type": "boolean"}, default)


def obj(desc, props, required=None, rules=None, default=None, max_properties=None):
    s = {"description": desc, "type": "object", "properties": props}
    if required:
        s["required"] = required
    return _extra(s, default, rules, maxProperties=max_properties)


def array(desc, items, max_items, min_items=None, list_type="atomic", keys=None, rules=None,
          default=None):
    s = {"description": desc, "type": "array", "items": items}
    _extra(s, default, None, minItems=min_items, maxItems=max_items)
    s["x-kubernetes-list-type"] = list_type
    if keys:
        s["x-kubernetes-list-map-keys"] = keys
    return _extra(s, None, rules)


def string_map(desc, value, max_properties=32, key_rules=None):
    s = {"description": desc, "type": "object", "additionalProperties": value,
         "maxProperties": max_properties}
    return _extra(s, None, key_rules)


def free_form(desc):
    return {"description": desc, "type": "object",
            "x-kubernetes-preserve-unknown-fields": True}


def uri(desc):
    """A URI in spec: the pattern, and a CEL rule against `..` segments."""
    rules = [rule("!self.matches('(^|/)[.][.](/|$)')", "must not contain `..` path segments")]
    return string(f"{desc} {URI_HELP}", max_length=2048, pattern=URI, rules=rules)


def status_uri(desc):
    return string(f"{desc} {URI_HELP}", max_length=2048, pattern=URI)


def duration(desc, default=None, minimum=None, maximum=None):
    rules = []
    if minimum:
        rules.append(rule(f"duration(self) >= duration('{minimum}')",
                          f"must be at least {minimum}"))
    if maximum:
        rules.append(rule(f"duration(self) <= duration('{maximum}')",
                          f"must be at most {maximum}"))
    return string(f"{desc} {DURATION_HELP}", max_length=32, pattern=DURATION, default=default,
                  rules=rules or None)


def ref(desc, what):
    return obj(desc, {"name": string(f"Name of the {what} in the same namespace.",
                                     max_length=253, min_length=1, pattern=DNS_SUBDOMAIN)},
               required=["name"])


def date_time(desc):
    return string(desc, max_length=None, fmt="date-time")


def conditions():
    cond = obj(
        "Condition contains details for one aspect of the current state of this resource "
        "(metav1.Condition).",
        {
            "type": string(
                "Type of condition in CamelCase or in foo.example.com/CamelCase: `Ready` on "
                "every kind, plus `Succeeded`/`Failed` (FineTuneJob), `Passed` (EvalRun), "
                "`AliasConflict` (PromptVersion).",
                max_length=316,
                pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"),
            "status": string("Status of the condition, one of True, False, Unknown.",
                             enum=["True", "False", "Unknown"]),
            "observedGeneration": int64(
                "The .metadata.generation that the condition was set based upon.", minimum=0),
            "lastTransitionTime": date_time(
                "Last time the condition transitioned from one status to another."),
            "reason": string(
                "A programmatic identifier (CamelCase) indicating the reason for the "
                "condition's last transition.", max_length=1024, min_length=1,
                pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"),
            "message": string("A human readable message indicating details about the "
                              "transition. May be empty.", max_length=32768),
        },
        required=["type", "status", "lastTransitionTime", "reason", "message"])
    return array("Current state of this resource as standard conditions, one per type. "
                 "Written by the operator.", cond, max_items=16, list_type="map",
                 keys=["type"])


def status(phases, props, desc):
    base = {
        "phase": string("Coarse lifecycle phase, set by the operator: one of "
                        + ", ".join(f"`{p}`" for p in phases) + ".", enum=phases),
        "conditions": conditions(),
        "observedGeneration": int64("The .metadata.generation the operator last acted on.",
                                    minimum=0),
    }
    base.update(props)
    return obj(desc, base)


def resources(desc="Compute resources of each container the operator creates for this "
                   "resource (corev1.ResourceRequirements shape)."):
    qty = {"description": "A resource quantity such as `500m`, `2`, `4Gi`.",
           "anyOf": [{"type": "integer"}, {"type": "string"}],
           "pattern": QUANTITY, "x-kubernetes-int-or-string": True}
    return obj(desc, {
        "requests": string_map("Minimum resources required, by resource name (`cpu`, "
                               "`memory`, ...).", qty, max_properties=16),
        "limits": string_map("Maximum resources allowed, by resource name (`cpu`, "
                             "`memory`, ...).", qty, max_properties=16),
    })


def no_gpu_in_resources(field):
    return rule(
        "!has(self.resources) || ((!has(self.resources.limits) || !('nvidia.com/gpu' in "
        "self.resources.limits)) && (!has(self.resources.requests) || !('nvidia.com/gpu' in "
        "self.resources.requests)))",
        f"set GPUs with spec.{field}, not with nvidia.com/gpu in spec.resources",
        field_path=".resources")


def workload_fields(what):
    """spec.image, resources, nodeSelector, tolerations, priorityClassName, schedulerName."""
    toleration = obj("A toleration (corev1.Toleration shape) copied to the Pods.", {
        "key": string("Taint key the toleration applies to; empty matches all keys (then "
                      "operator must be Exists).", max_length=316),
        "operator": string("`Exists` or `Equal` (default `Equal`).", enum=["Exists", "Equal"]),
        "value": string("Taint value the toleration matches (empty with Exists).",
                        max_length=63),
        "effect": string("Taint effect to match: `NoSchedule`, `PreferNoSchedule`, "
                         "`NoExecute`; empty matches all effects.",
                         enum=["", "NoSchedule", "PreferNoSchedule", "NoExecute"]),
        "tolerationSeconds": int64("With effect NoExecute: how long the Pod stays bound "
                                   "after the taint appears; unset means forever."),
    })
    return {
        "image": string(f"Container image for the agent that runs {what}; defaults to the "
                        "operator's `--agent-image`.", max_length=512, min_length=1,
                        pattern=r"^\S+$"),
        "resources": resources(),
        "nodeSelector": string_map(
            "Node labels the Pods must match (corev1 PodSpec.nodeSelector).",
            {"description": "Label value.", "type": "string", "maxLength": 63},
            max_properties=32),
        "tolerations": array("Tolerations added to the Pods (corev1 shape).", toleration,
                             max_items=32),
        "priorityClassName": string("PriorityClass of the Pods.", min_length=1,
                                    pattern=DNS_SUBDOMAIN),
        "schedulerName": string("Scheduler that places the Pods; the default scheduler "
                                "when unset.", min_length=1, pattern=DNS_SUBDOMAIN),
    }


# --- printer columns ------------------------------------------------------------

def col(name, path, typ="string", desc="", priority=0):
    c = {"name": name, "type": typ, "jsonPath": path}
    if desc:
        c["description"] = desc
    if priority:
        c["priority"] = priority
    return c


AGE = col("Age", ".metadata.creationTimestamp", "date", "Time since the resource was created.")


def phase_col(desc="Lifecycle phase."):
    return col("Phase", ".status.phase", desc=desc)


# --- the kinds ----------------------------------------------------------------------

def prompt_version():
    message = obj("One chat message.", {
        "role": string("Who speaks: `system`, `user` or `assistant`.",
                       enum=["system", "user", "assistant"]),
        "content": string("Message text; may contain `{{name}}` placeholders.",
                          max_length=65536),
    }, required=["role", "content"])
    variable = obj("A variable the template's `{{name}}` placeholders refer to.", {
        "name": string("Placeholder name as written between `{{` and `}}`.", max_length=64,
                       pattern=r"^[A-Za-z_][A-Za-z0-9_]*$"),
        "required": boolean("Rendering fails when a required variable has no value.",
                            default=False),
        "default": string("Value used when none is given (only for optional variables).",
                          max_length=4096),
        "description": string("What the variable holds, for people and tooling.",
                              max_length=1024),
    }, required=["name"], rules=[rule("!(self.required && has(self.default))",
                                      "a required variable cannot have a default",
                                      field_path=".default")])
    example = obj("A worked example (few-shot demonstration).", {
        "inputs": string_map("Variable values of the example, by variable name.",
                             {"description": "Variable value.", "type": "string",
                              "maxLength": 16384}),
        "output": string("The ideal answer for these inputs.", max_length=16384),
    }, required=["output"])
    spec = obj(
        "One immutable version of a prompt. Set exactly one of `template` and `messages`. "
        "The whole spec is immutable: publish a new PromptVersion to change anything, and "
        "move an alias label to it.",
        {
            "family": string("Prompt family this version belongs to (aliases are unique "
                             "within a family); a DNS-1123 label.", max_length=63,
                             min_length=1, pattern=DNS_LABEL),
            "template": string("Prompt text with `{{name}}` placeholders (completion-style "
                               "prompts). Exclusive with messages.", max_length=65536,
                               min_length=1),
            "messages": array("Chat messages with `{{name}}` placeholders (chat-style "
                              "prompts), in order. Exclusive with template.", message,
                              max_items=64, min_items=1),
            "variables": array("Variables the placeholders refer to, unique by name.",
                               variable, max_items=64, list_type="map", keys=["name"]),
            "examples": array("Few-shot examples rendered before the input when shots is "
                              "`one` (the first) or `few` (all).", example, max_items=32),
            "shots": string("How many examples to include: `zero`, `one` (needs at least "
                            "one example) or `few` (needs at least two).",
                            enum=["zero", "one", "few"], default="zero"),
            "chainOfThought": string("Reasoning instruction appended to the prompt (for "
                                     "example `Think step by step.`); none when unset.",
                                     max_length=4096, min_length=1),
            "parameters": obj("Generation parameters recommended with this prompt.", {
                "temperature": number("Sampling temperature; 0 is greedy.", minimum=0,
                                      maximum=2),
                "topP": number("Nucleus sampling probability mass.", exclusive_minimum=True,
                               minimum=0, maximum=1),
                "maxTokens": integer("Maximum number of tokens to generate.", minimum=1,
                                     maximum=131072),
                "stop": array("Stop sequences: generation ends at the first one produced.",
                              string("A stop sequence.", max_length=64, min_length=1),
                              max_items=8, list_type="set"),
                "seed": int64("Sampling seed, for reproducible generations.", minimum=0),
            }),
        },
        required=["family"],
        rules=[
            rule("has(self.template) != has(self.messages)",
                 "exactly one of spec.template or spec.messages must be set"),
            rule("self.shots == 'zero' || (has(self.examples) && size(self.examples) >= "
                 "(self.shots == 'one' ? 1 : 2))",
                 "spec.shots `one` needs at least one spec.examples entry, `few` at least two",
                 field_path=".shots"),
            rule("self == oldSelf",
                 "spec is immutable: create a new PromptVersion (and move the alias label) "
                 "instead"),
        ])
    st = status(["Ready", "Invalid"], {
        "contentHash": string("`sha256:<hex>` of the canonical JSON of spec (keys sorted).",
                              max_length=71, pattern=r"^sha256:[0-9a-f]{64}$"),
    }, "Observed state, written by the operator.")
    return dict(
        kind="PromptVersion", plural="promptversions", singular="promptversion",
        short=["pmv"],
        desc="PromptVersion is one immutable version of a prompt (text or chat messages "
             "with `{{variables}}`, few-shot examples, optional chain-of-thought, model "
             "parameters). Label `llmops.dev/alias-<name>` marks movable aliases such as "
             "`prod`; the operator hashes the spec and keeps aliases unique per family.",
        spec=spec, status=st,
        columns=[col("Family", ".spec.family", desc="Prompt family."),
                 col("Shots", ".spec.shots", desc="Few-shot mode."),
                 phase_col(), AGE,
                 col("Hash", ".status.contentHash", desc="SHA-256 of the spec.", priority=1)])


def finetune_job():
    progress = obj("Training progress, written by the agent (rank 0).", {
        "step": int64("Optimizer steps completed.", minimum=0),
        "totalSteps": int64("Optimizer steps the run will take.", minimum=0),
        "epoch": number("Fractional epoch reached, e.g. 1.5.", minimum=0),
        "loss": number("Training loss, smoothed over the last logging interval."),
        "evalLoss": number("Loss on the validation set at the last evaluation."),
        "learningRate": number("Learning rate at the current step.", minimum=0),
        "tokensPerSecond": number("Training throughput over all workers.", minimum=0),
        "eta": duration("Estimated time remaining (a duration, not a timestamp)."),
    })
    dataset = obj("What the agent (rank 0) read from the dataset.", {
        "records": int64("Non-blank JSONL lines read, every file.", minimum=0),
        "trainExamples": int64("Examples in the training set.", minimum=0),
        "validationExamples": int64("Examples in the validation set.", minimum=0),
        "skipped": int64("Malformed records skipped (dataset.skipInvalid).", minimum=0),
        "truncated": int64("Examples cut to sequenceLength.", minimum=0),
        "dropped": int64("Examples longer than sequenceLength left out (truncate: drop).",
                         minimum=0),
        "tokens": int64("Tokens in the kept examples.", minimum=0),
        "sequences": int64("Packed training sequences of sequenceLength tokens.", minimum=0),
    })
    checkpoint = obj("A checkpoint that is kept.", {
        "step": int64("Optimizer step the checkpoint was taken at.", minimum=0),
        "uri": status_uri("Where the checkpoint is."),
        "loss": number("Training loss at that step."),
        "evalLoss": number("Validation loss at that step, when evaluated."),
        "time": date_time("When the checkpoint was written."),
    }, required=["step", "uri"])
    hp = obj("Training hyper-parameters.", {
        "epochs": integer("Passes over the training set (maxSteps, when set, stops earlier).",
                          minimum=1, maximum=1000, default=1),
        "maxSteps": int64("Stop after this many optimizer steps.", minimum=1),
        "globalBatchSize": integer(
            "Sequences per optimizer step over all workers; must be a multiple of "
            "microBatchSize × data-parallel ranks (workers × max(gpusPerWorker, 1)); the "
            "quotient is the gradient-accumulation count.", minimum=1, maximum=65536,
            default=8),
        "microBatchSize": integer("Sequences per forward/backward pass on one rank.",
                                  minimum=1, maximum=4096, default=1),
        "sequenceLength": integer("Tokens per training sequence (longer examples are "
                                  "truncated or dropped, see dataset.truncate).",
                                  minimum=8, maximum=131072, default=512),
        "learningRate": number("Peak learning rate. The default suits LoRA; full "
                               "fine-tuning usually wants 1e-5 to 5e-5.",
                               exclusive_minimum=True, minimum=0, maximum=1, default=0.0002),
        "schedule": string("Learning-rate schedule after warm-up: `constant`, `linear` or "
                           "`cosine` decay.", enum=["constant", "linear", "cosine"],
                           default="cosine"),
        "warmupSteps": int64("Steps of linear warm-up from 0 to learningRate.", minimum=0,
                             default=0),
        "weightDecay": number("AdamW decoupled weight decay.", minimum=0, maximum=1,
                              default=0),
        "gradClip": number("Clip the global gradient norm to this value; 0 disables.",
                           minimum=0, default=1.0),
        "seed": int64("Seed for initialisation, shuffling and dropout.", minimum=0,
                      default=42),
        "precision": string("Matmul precision on GPUs: `fp32`, or `bf16` (bf16 products "
                            "with fp32 accumulation; weights, gradients and optimizer "
                            "state stay fp32). Workers training on the CPU use fp32 and "
                            "say so.", enum=["fp32", "bf16"], default="fp32"),
    }, default={})
    spec_props = {
        "baseModel": uri("Model to start from: a Hugging Face-style directory "
                         "(config.json, *.safetensors, tokenizer files)."),
        "dataset": obj("Training data.", {
            "train": uri("Training set: JSONL file or a directory of them."),
            "validation": uri("Validation set; exclusive with validationSplit."),
            "validationSplit": number("Fraction of the training set held out for "
                                      "validation; exclusive with validation.", minimum=0,
                                      maximum=0.5),
            "format": string("Record format: `text` ({\"text\"}), `prompt-completion` "
                             "({\"prompt\",\"completion\"}) or `chat` ({\"messages\"}).",
                             enum=["text", "prompt-completion", "chat"], default="text"),
            "promptRef": ref("PromptVersion that renders each record (its variables are "
                             "the record's fields) before tokenisation.", "PromptVersion"),
            "skipInvalid": boolean("Skip records that do not parse instead of failing.",
                                   default=False),
            "truncate": string("What to do with records longer than sequenceLength: "
                               "`truncate` them or `drop` them.", enum=["truncate", "drop"],
                               default="truncate"),
        }, required=["train"], rules=[
            rule("!(has(self.validation) && has(self.validationSplit))",
                 "set at most one of validation and validationSplit",
                 field_path=".validationSplit"),
        ]),
        "method": string("`lora` trains a low-rank adapter (PEFT layout); `full` updates "
                         "every weight.", enum=["full", "lora"], default="lora"),
        "lora": obj("LoRA settings; only with method `lora`. When unset, the defaults of "
                    "its fields apply (r 8, alpha 8, dropout 0).", {
            "r": integer("Rank of the update matrices.", minimum=1, maximum=1024, default=8),
            "alpha": number("Scaling numerator: the update is scaled by alpha / r.",
                            exclusive_minimum=True, minimum=0, maximum=4096, default=8),
            "dropout": number("Dropout on the adapter input.", minimum=0, maximum=1,
                              exclusive_maximum=True, default=0),
            "targetModules": array(
                "Module names to adapt (e.g. `q_proj`, `v_proj`, `c_attn`); the model "
                "family's attention projections when empty.",
                string("A module name or suffix.", max_length=128,
                       pattern=r"^[A-Za-z0-9_.]+$"), max_items=32, list_type="set"),
        }),
        "hyperparameters": hp,
        "workers": integer("Worker Pods (gang-scheduled: all or none).", minimum=1,
                           maximum=64, default=1),
        "gpusPerWorker": integer("GPUs (`nvidia.com/gpu`) per worker; 0 trains on CPU.",
                                 minimum=0, maximum=16, default=0),
        "checkpoint": obj("Checkpointing.", {
            "intervalSteps": int64("Save a checkpoint every this many steps.", minimum=1,
                                   default=100),
            "keep": integer("How many recent checkpoints to keep.", minimum=1, maximum=100,
                            default=3),
        }, default={}),
        "output": uri("Where the trained model (method full) or adapter (method lora) and "
                      "the checkpoints are written."),
        "suspend": boolean("Stop the workers (keeping checkpoints) while true; resume from "
                           "the latest checkpoint when set back to false. The only field "
                           "that may change once the job has started.", default=False),
        "activeDeadlineSeconds": int64("Fail the job when it has been running this long.",
                                       minimum=1),
        "backoffLimit": integer("Gang restarts (from the latest checkpoint) before the job "
                                "is marked Failed.", minimum=0, maximum=100, default=3),
        "ttlSecondsAfterFinished": int64("Delete the job this long after it finished; "
                                         "kept forever when unset.", minimum=0),
    }
    spec_props.update(workload_fields("the training workers"))
    spec = obj(
        "Desired fine-tuning run. Mutable until the job starts (status.startTime is set); "
        "from then on only `suspend` may change.",
        spec_props, required=["baseModel", "dataset", "output"],
        rules=[
            # Rules over defaulted objects live here, not on the object: the API server
            # checks an object's rules against its default ({}) before nested defaults.
            rule("self.hyperparameters.microBatchSize <= self.hyperparameters.globalBatchSize",
                 "hyperparameters.microBatchSize must not exceed "
                 "hyperparameters.globalBatchSize",
                 field_path=".hyperparameters.microBatchSize"),
            rule("!has(self.hyperparameters.maxSteps) || self.hyperparameters.warmupSteps < "
                 "self.hyperparameters.maxSteps",
                 "hyperparameters.warmupSteps must be less than hyperparameters.maxSteps",
                 field_path=".hyperparameters.warmupSteps"),
            rule("self.method == 'lora' || !has(self.lora)",
                 "spec.lora is only allowed with spec.method lora", field_path=".lora"),
            rule("self.hyperparameters.globalBatchSize % (self.hyperparameters.microBatchSize "
                 "* self.workers * (self.gpusPerWorker > 0 ? self.gpusPerWorker : 1)) == 0",
                 # (string(int) in a messageExpression is costed as unbounded)
                 "hyperparameters.globalBatchSize must be a multiple of "
                 "hyperparameters.microBatchSize × workers × max(gpusPerWorker, 1)",
                 field_path=".hyperparameters.globalBatchSize"),
            no_gpu_in_resources("gpusPerWorker"),
        ])
    st = status(["Pending", "Running", "Suspended", "Succeeded", "Failed"], {
        "startTime": date_time("When the workers first started; from then on the spec is "
                               "fixed except suspend."),
        "completionTime": date_time("When the job succeeded or failed."),
        "restarts": integer("Gang restarts so far.", minimum=0),
        "progress": progress,
        "latestCheckpoint": status_uri("The most recent checkpoint."),
        "checkpoints": array("Checkpoints that are kept, by step.", checkpoint, max_items=100,
                             list_type="map", keys=["step"]),
        "dataset": dataset,
        "output": status_uri("The trained model or adapter, once the job succeeded."),
    }, "Observed state: phase and conditions from the operator, progress and checkpoints "
       "from the agent.")
    fixed = [p for p in spec_props if p != "suspend"]
    # `self.spec.?f == oldSelf.spec.?f` would be shorter, but the cost estimator
    # treats optional strings as unbounded; has() keeps every size known.
    def eq(p):
        return (f"(has(self.spec.{p}) == has(oldSelf.spec.{p}) && (!has(self.spec.{p}) || "
                f"self.spec.{p} == oldSelf.spec.{p}))")
    same = " && ".join(eq(p) for p in fixed)
    # A messageExpression naming the changed fields would need join() over a computed
    # list, which the cost estimator counts as unbounded; the message is static.
    root_rules = [rule(
        f"!has(oldSelf.status) || !has(oldSelf.status.startTime) || ({same})",
        "spec is fixed once the job has started (status.startTime is set); only "
        "spec.suspend may change", field_path=".spec", reason="FieldValueForbidden")]
    return dict(
        kind="FineTuneJob", plural="finetunejobs", singular="finetunejob", short=["ftj"],
        desc="FineTuneJob fine-tunes a base model on a dataset, fully or with LoRA, on "
             "`workers` × `gpusPerWorker`; the operator runs one Pod per worker (gang) "
             "behind a headless Service and the agent reports progress and checkpoints.",
        spec=spec, status=st, root_rules=root_rules,
        columns=[phase_col(), col("Method", ".spec.method", desc="full or lora."),
                 col("Step", ".status.progress.step", "integer", "Steps completed."),
                 col("Total", ".status.progress.totalSteps", "integer", "Steps in the run."),
                 col("Loss", ".status.progress.loss", "number", "Training loss."),
                 col("ETA", ".status.progress.eta", desc="Estimated time remaining."),
                 AGE,
                 col("Workers", ".spec.workers", "integer", "Worker Pods.", 1),
                 col("GPUs", ".spec.gpusPerWorker", "integer", "GPUs per worker.", 1),
                 col("Eval-Loss", ".status.progress.evalLoss", "number", "Validation loss.",
                     1),
                 col("Output", ".status.output", desc="Trained model or adapter.", priority=1)])


def rag_index():
    source = obj("One document source: exactly one of uri, configMapRef, inline.", {
        "uri": uri("Files to index; the path may contain globs (`*`, `**`, `?`). "
                   "Text, Markdown, HTML and JSONL are read."),
        "configMapRef": obj("Documents from a ConfigMap in the same namespace.", {
            "name": string("ConfigMap name.", min_length=1, pattern=DNS_SUBDOMAIN),
            "key": string("Key of the ConfigMap to read; every key when unset.",
                          min_length=1, pattern=r"^[-._a-zA-Z0-9]+$"),
        }, required=["name"]),
        "inline": obj("A document written in the resource.", {
            "id": string("Document id, unique among the inline sources.", min_length=1,
                         pattern=r"^[A-Za-z0-9][-A-Za-z0-9_.]*$"),
            "text": string("Document text.", max_length=16384, min_length=1),
        }, required=["id", "text"]),
    }, rules=[rule("(has(self.uri) ? 1 : 0) + (has(self.configMapRef) ? 1 : 0) + "
                   "(has(self.inline) ? 1 : 0) == 1",
                   "set exactly one of uri, configMapRef and inline")])
    spec_props = {
        "sources": array(
            "Where the documents come from.", source, max_items=64, min_items=1,
            rules=[rule("self.all(a, !has(a.inline) || self.exists_one(b, has(b.inline) && "
                        "b.inline.id == a.inline.id))", "inline ids must be unique")]),
        "chunking": obj("How documents are split into chunks before embedding.", {
            "strategy": string("`fixed` windows of size tokens, or split at `sentence` or "
                               "`paragraph` boundaries into chunks of at most size tokens.",
                               enum=["fixed", "sentence", "paragraph"], default="fixed"),
            "size": integer("Chunk size in tokens of the embedding model's tokenizer.",
                            minimum=16, maximum=8192, default=512),
            "overlap": integer("Tokens shared by consecutive chunks.", minimum=0,
                               maximum=4096, default=64),
        }, default={}),
        "embedding": obj("The embedding model.", {
            "model": uri("Embedding model directory (Hugging Face-style encoder)."),
            "batchSize": integer("Chunks embedded per batch.", minimum=1, maximum=4096,
                                 default=32),
        }, required=["model"]),
        "index": obj("The vector index.", {
            "type": string("`flat` (exact search), `hnsw` (graph) or `ivf` (inverted "
                           "lists); use hnsw or ivf beyond about 100k chunks.",
                           enum=["flat", "hnsw", "ivf"], default="flat"),
            "metric": string("Similarity: `cosine`, inner product `ip` or Euclidean `l2`.",
                             enum=["cosine", "ip", "l2"], default="cosine"),
            "params": free_form("Index parameters, free-form: hnsw `M`, `efConstruction`, "
                                "`efSearch`; ivf `nlist`, `nprobe`."),
        }, default={}),
        "search": obj("The search service the operator runs once an index is built.", {
            "replicas": integer("Search Pods.", minimum=0, maximum=64, default=1),
            "resources": resources("Compute resources of each search Pod "
                                   "(corev1.ResourceRequirements shape); spec.resources "
                                   "applies to the build Job."),
        }, default={}),
    }
    spec_props.update(workload_fields("the index build and the search service"))
    spec = obj("Desired index: sources, chunking, embedding model and index type. A change "
               "builds a new version; the previous one serves until it is ready.",
               spec_props, required=["sources", "embedding"], rules=[
                   rule("self.chunking.overlap < self.chunking.size",
                        "spec.chunking.overlap must be less than spec.chunking.size",
                        field_path=".chunking.overlap")])
    st = status(["Pending", "Building", "Ready", "Failed"], {
        "buildVersion": string("Version being built (empty when no build runs).",
                               max_length=128),
        "activeVersion": string("Version the search service serves.", max_length=128),
        "documents": int64("Documents in the active version.", minimum=0),
        "chunks": int64("Chunks (vectors) in the active version.", minimum=0),
        "dimensions": integer("Embedding dimensions.", minimum=0),
        "indexBytes": int64("Size of the active index in bytes.", minimum=0),
        "buildRate": number("Chunks embedded per second in the last build.", minimum=0),
        "endpoint": string("URL of the search service.", max_length=2048,
                           pattern=r"^https?://"),
    }, "Observed state: phase and conditions from the operator, counts from the agent.")
    return dict(
        kind="RagIndex", plural="ragindexes", singular="ragindex", short=["rag"],
        desc="RagIndex builds a vector index over documents (chunked, embedded) with a Job "
             "and serves similarity search from a Deployment and Service.",
        spec=spec, status=st,
        columns=[phase_col(), col("Docs", ".status.documents", "integer", "Documents."),
                 col("Chunks", ".status.chunks", "integer", "Chunks (vectors)."),
                 col("Version", ".status.activeVersion", desc="Version served."), AGE,
                 col("Dim", ".status.dimensions", "integer", "Embedding dimensions.", 1),
                 col("Bytes", ".status.indexBytes", "integer", "Index size in bytes.", 1),
                 col("Endpoint", ".status.endpoint", desc="Search service URL.", priority=1)])


def eval_run():
    metric = obj("A metric to compute.", {
        "name": string("Metric name.", enum=EVAL_METRICS),
        "params": free_form("Metric parameters, free-form (for example pass_at_k `k`, "
                            "bertscore `model`, llm_judge `criteria`)."),
    }, required=["name"])
    spec_props = {
        "target": obj(
            "What produces the predictions: an endpoint, or a model (plus optional adapter) "
            "the agent loads; unset or empty when the dataset already holds predictions.", {
                "endpointRef": ref("ModelEndpoint to query.", "ModelEndpoint"),
                "model": uri("Model directory the agent loads."),
                "adapter": uri("LoRA adapter (PEFT layout) applied to model."),
            }, rules=[
                rule("!(has(self.endpointRef) && has(self.model))",
                     "set at most one of target.endpointRef and target.model"),
                rule("!has(self.adapter) || has(self.model)", "target.adapter needs "
                     "target.model", field_path=".adapter"),
            ]),
        "promptRef": ref("PromptVersion that renders each record into the input (needs "
                         "target.endpointRef or target.model).", "PromptVersion"),
        "dataset": obj("Evaluation data (JSONL).", {
            "uri": uri("Dataset file or directory."),
            "fields": string_map(
                "Maps roles to record fields: `input`, `reference`, `prediction`, "
                "`context`, or a prompt variable name -> field name.",
                {"description": "Field name in the record.", "type": "string",
                 "maxLength": 253}, max_properties=32),
        }, required=["uri"]),
        "metrics": array("Metrics to compute, unique by name.", metric, max_items=16,
                         min_items=1, list_type="map", keys=["name"]),
        "judge": obj("The judge for the llm_judge metric.", {
            "endpointRef": ref("ModelEndpoint that judges.", "ModelEndpoint"),
            "prompt": string("Judge instructions; the record's input, reference and "
                             "prediction are appended.", max_length=16384, min_length=1),
        }, required=["endpointRef"]),
        "thresholds": string_map(
            "Pass thresholds by metric name (each must be in metrics): the run passes when "
            "every value is at least its threshold (at most, for perplexity).",
            {"description": "Threshold value.", "type": "number"}, max_properties=16),
        "baseline": obj("A previous run to compare against.", {
            "evalRunRef": ref("EvalRun whose results are the baseline.", "EvalRun"),
            "maxRegression": number("Largest allowed drop (rise, for perplexity) of any "
                                    "metric from the baseline, in the metric's units.",
                                    minimum=0, default=0),
        }, required=["evalRunRef"]),
        "sampleLimit": int64("Evaluate at most this many records (the first ones).",
                             minimum=1, maximum=10000000),
        "seed": int64("Sampling seed for generation and metric resampling.", minimum=0,
                      default=42),
    }
    spec_props.update(workload_fields("the evaluation"))
    spec = obj(
        "Desired evaluation: target, dataset, metrics, thresholds and baseline. A change "
        "(new generation) runs the evaluation again.", spec_props,
        required=["dataset", "metrics"], rules=[
            rule("!has(self.thresholds) || self.thresholds.all(k, self.metrics.exists(m, "
                 "m.name == k))",
                 # Map keys have no length bound, so the message cannot name them
                 # (a messageExpression over them exceeds the cost budget).
                 "spec.thresholds keys must be metric names listed in spec.metrics",
                 field_path=".thresholds"),
            rule("!self.metrics.exists(m, m.name == 'llm_judge') || has(self.judge)",
                 "metric llm_judge needs spec.judge", field_path=".judge",
                 reason="FieldValueRequired"),
            rule("!has(self.promptRef) || (has(self.target) && (has(self.target.endpointRef) "
                 "|| has(self.target.model)))",
                 "spec.promptRef needs target.endpointRef or target.model",
                 field_path=".promptRef"),
        ])
    st = status(["Pending", "Running", "Succeeded", "Failed"], {
        "results": string_map("Metric values by metric name, written by the agent.",
                              {"description": "Metric value.", "type": "number"},
                              max_properties=64),
        "artifacts": status_uri("Where per-sample predictions and scores were written."),
    }, "Observed state: phase and conditions (`Passed`) from the operator, results from "
       "the agent.")
    root_rules = [rule(
        "!has(self.spec.baseline) || self.spec.baseline.evalRunRef.name != self.metadata.name",
        "an EvalRun cannot be its own baseline", field_path=".spec.baseline.evalRunRef.name")]
    return dict(
        kind="EvalRun", plural="evalruns", singular="evalrun", short=["evr"],
        desc="EvalRun evaluates a model, an endpoint or a prompt on a dataset with text "
             "metrics, and passes or fails against thresholds and a baseline run.",
        spec=spec, status=st, root_rules=root_rules,
        columns=[phase_col(),
                 col("Passed", '.status.conditions[?(@.type=="Passed")].status',
                     desc="Whether every threshold and the baseline held."),
                 col("Target", ".spec.target.endpointRef.name", desc="Endpoint evaluated."),
                 col("Results", ".status.results", desc="Metric values."), AGE,
                 col("Model", ".spec.target.model", desc="Model evaluated.", priority=1),
                 col("Artifacts", ".status.artifacts", desc="Per-sample results.",
                     priority=1)])


def model_endpoint():
    def model(desc):
        adapter = obj("A LoRA adapter served next to the base model.", {
            "name": string("Adapter name; requests select it as the model name.",
                           max_length=63, min_length=1, pattern=DNS_LABEL),
            "uri": uri("Adapter directory (PEFT layout)."),
        }, required=["name", "uri"])
        return obj(desc, {
            "uri": uri("Model directory (Hugging Face-style)."),
            "adapters": array("LoRA adapters served with the model, unique by name.",
                              adapter, max_items=16, list_type="map", keys=["name"]),
        }, required=["uri"])

    variant = obj("A variant: its own Deployment, getting weight percent of the traffic.", {
        "name": string("Variant name (DNS-1123 label, at most 22 characters: it suffixes "
                       "the endpoint's name in its Deployment and Service), unique; not "
                       "`router`, which names the router.", max_length=22, min_length=1,
                       pattern=DNS_LABEL),
        "model": model("Model for this variant; spec.model when unset."),
        "weight": integer("Percent of live traffic (weights of all variants sum to 100; the "
                          "shadow variant has 0).", minimum=0, maximum=100),
    }, required=["name", "weight"], rules=[
        rule("self.name != 'router'", "a variant cannot be named router: that names the "
             "endpoint's router", field_path=".name")])
    spec_props = {
        "model": model("The model served (and the default for variants)."),
        "replicas": integer("Serving Pods (per variant when there are variants).", minimum=0,
                            maximum=100, default=1),
        "gpus": integer("GPUs (`nvidia.com/gpu`) per replica; 0 serves on CPU.", minimum=0,
                        maximum=16, default=0),
        "serving": obj("Batching and length limits of the server.", {
            "maxBatchSize": integer("Sequences decoded together.", minimum=1, maximum=1024,
                                    default=8),
            "maxBatchTokens": integer("Tokens (prompt plus generated) in one batch.",
                                      minimum=1, maximum=1048576, default=8192),
            "contextLength": integer("Longest prompt plus generation; the model's own limit "
                                     "when unset.", minimum=16, maximum=1048576),
            "maxNewTokens": integer("Upper bound on tokens generated per request.",
                                    minimum=1, maximum=131072, default=256),
        }, default={}, rules=[
            rule("!has(self.contextLength) || self.maxNewTokens < self.contextLength",
                 "serving.maxNewTokens must be less than serving.contextLength",
                 field_path=".maxNewTokens"),
        ]),
        "variants": array("A/B variants; when set, a router splits traffic by weight.",
                          variant, max_items=8, list_type="map", keys=["name"]),
        "shadow": obj("Mirror a share of requests to a variant; its answers are recorded, "
                      "not returned.", {
                          "variant": string("Name of the variant (in spec.variants) that "
                                            "gets the copies.", max_length=63, min_length=1,
                                            pattern=DNS_LABEL),
                          "percent": integer("Percent of requests mirrored.", minimum=0,
                                             maximum=100, default=100),
                      }, required=["variant"]),
        "apiKeySecretRef": obj("Secret holding the API key clients must present as a "
                               "Bearer token; no authentication when unset.", {
                                   "name": string("Secret name.", min_length=1,
                                                  pattern=DNS_SUBDOMAIN),
                                   "key": string("Key in the Secret.", min_length=1,
                                                 pattern=r"^[-._a-zA-Z0-9]+$",
                                                 default="api-key"),
                               }, required=["name"]),
    }
    spec_props.update(workload_fields("the model server and router"))
    spec = obj(
        "Desired serving: model and adapters, replicas, batching, variants with traffic "
        "weights and an optional shadow variant.", spec_props, required=["model"], rules=[
            rule("!has(self.variants) || size(self.variants) == 0 || "
                 "self.variants.map(v, v.weight).sum() == 100",
                 "spec.variants weights must sum to 100",
                 field_path=".variants"),
            rule("!has(self.shadow) || (has(self.variants) && self.variants.exists(v, "
                 "v.name == self.shadow.variant))",
                 message_expression="'spec.shadow.variant ' + self.shadow.variant + ' is not "
                 "one of spec.variants'",
                 field_path=".shadow.variant"),
            rule("!has(self.shadow) || !has(self.variants) || self.variants.all(v, "
                 "v.name != self.shadow.variant || v.weight == 0)",
                 "the shadow variant must have weight 0: it gets copies of requests, not "
                 "live traffic", field_path=".shadow.variant"),
            no_gpu_in_resources("gpus"),
        ])
    vstatus = obj("State of one variant.", {
        "name": string("Variant name.", max_length=63),
        "readyReplicas": integer("Ready Pods of the variant.", minimum=0),
        "weight": integer("Traffic percent the router applies now.", minimum=0, maximum=100),
    }, required=["name"])
    st = status(["Pending", "Ready", "Degraded"], {
        "url": string("Base URL of the OpenAI-compatible API.", max_length=2048,
                      pattern=r"^https?://"),
        "readyReplicas": integer("Ready serving Pods over all variants.", minimum=0),
        "variants": array("Per-variant state.", vstatus, max_items=8, list_type="map",
                          keys=["name"]),
    }, "Observed state, written by the operator.")
    return dict(
        kind="ModelEndpoint", plural="modelendpoints", singular="modelendpoint",
        short=["mep"],
        desc="ModelEndpoint serves a model (with LoRA adapters) behind an OpenAI-compatible "
             "API, with A/B variants by traffic weight and a shadow variant.",
        spec=spec, status=st,
        columns=[phase_col(), col("Ready", ".status.readyReplicas", "integer",
                                  "Ready serving Pods."),
                 col("Replicas", ".spec.replicas", "integer", "Desired Pods (per variant)."),
                 col("URL", ".status.url", desc="API base URL."), AGE,
                 col("Model", ".spec.model.uri", desc="Model served.", priority=1),
                 col("Shadow", ".spec.shadow.variant", desc="Variant getting shadow traffic.",
                     priority=1)])


def monitor():
    drift = obj("A drift test on one metric: current window against the baseline.", {
        "metric": string("Metric (one of spec.metrics).", max_length=63, pattern=METRIC_NAME),
        "test": string("Statistic: `ks` (Kolmogorov-Smirnov), `psi` (population stability), "
                       "`chi2`, `wasserstein` or `jensenshannon`.",
                       enum=["ks", "psi", "chi2", "wasserstein", "jensenshannon"]),
        "threshold": number("Score above which the metric has drifted.", minimum=0),
    }, required=["metric", "test", "threshold"])
    alert = obj("An alert: fires when `metric op value` holds for `for`.", {
        "metric": string("A metric in spec.metrics, `drift.<metric>` for a drift score, or "
                         "`llm_judge` for the judge's score.", max_length=70,
                         pattern=r"^(drift\.)?[a-z][a-z0-9_]*$"),
        "op": string("Comparison: `>`, `>=`, `<` or `<=`.", enum=[">", ">=", "<", "<="]),
        "value": number("Threshold the metric is compared with."),
        "for": duration("How long the condition must hold before the alert fires.",
                        default="0s"),
        "severity": string("`info`, `warning` or `critical`.",
                           enum=["info", "warning", "critical"], default="warning"),
    }, required=["metric", "op", "value"])
    firing = obj("An alert that is firing.", {
        "metric": string("The alert's metric.", max_length=70),
        "op": string("The alert's comparison.", enum=[">", ">=", "<", "<="]),
        "value": number("The alert's threshold."),
        "observed": number("The value that breached it."),
        "severity": string("The alert's severity.", enum=["info", "warning", "critical"]),
        "since": date_time("When it started firing."),
    }, required=["metric"])
    spec_props = {
        "target": obj("What to watch: exactly one of endpointRef and ragIndexRef.", {
            "endpointRef": ref("ModelEndpoint to watch.", "ModelEndpoint"),
            "ragIndexRef": ref("RagIndex to watch.", "RagIndex"),
        }, rules=[rule("has(self.endpointRef) != has(self.ragIndexRef)",
                       "set exactly one of target.endpointRef and target.ragIndexRef")]),
        "interval": duration("How often a window is evaluated.", default="1m", minimum="10s",
                             maximum="24h"),
        "window": duration("Length of the window of traffic each evaluation looks at.",
                           default="5m", minimum="10s", maximum="168h"),
        "metrics": array(
            "Metrics collected per window, snake_case (for example latency_ms, ttft_ms, "
            "tokens_per_second, error_rate, input_tokens, output_tokens; for a RagIndex "
            "query_latency_ms, top_score).",
            string("Metric name.", max_length=63, pattern=METRIC_NAME), max_items=32,
            min_items=1, list_type="set"),
        "baseline": obj("Reference distribution for drift: exactly one of window and "
                        "datasetUri.", {
                            "window": duration("Traffic of this long before the current "
                                               "window.", minimum="1m", maximum="720h"),
                            "datasetUri": uri("A JSONL file of reference records."),
                        }, rules=[rule("has(self.window) != has(self.datasetUri)",
                                       "set exactly one of baseline.window and "
                                       "baseline.datasetUri")]),
        "drift": array("Drift tests, at most one per metric.", drift, max_items=32,
                       list_type="map", keys=["metric"]),
        "alerts": array("Alert rules.", alert, max_items=32),
        "judge": obj("An LLM judge that scores sampled responses (metric `llm_judge`).", {
            "endpointRef": ref("ModelEndpoint that judges.", "ModelEndpoint"),
            "prompt": string("Judge instructions; the request and response are appended.",
                             max_length=16384, min_length=1),
        }, required=["endpointRef"]),
        "reviewSampling": obj("Sampling of requests for human review.", {
            "percent": number("Percent of requests sampled.", minimum=0, maximum=100,
                              default=0),
        }),
    }
    spec_props.update(workload_fields("the monitor"))
    spec = obj(
        "Desired monitoring: target, window, metrics, baseline, drift tests and alerts.",
        spec_props, required=["target", "metrics"], rules=[
            rule("duration(self.window) >= duration(self.interval)",
                 "spec.window must be at least spec.interval", field_path=".window"),
            rule("!has(self.drift) || self.drift.all(d, d.metric in self.metrics)",
                 "spec.drift metrics must be listed in spec.metrics", field_path=".drift"),
            rule("!has(self.drift) || self.drift.size() == 0 || has(self.baseline)",
                 "spec.drift needs spec.baseline", field_path=".baseline",
                 reason="FieldValueRequired"),
            rule("!has(self.alerts) || self.alerts.all(a, a.metric in self.metrics || "
                 "(a.metric == 'llm_judge' && has(self.judge)) || (has(self.drift) && "
                 "self.drift.exists(d, 'drift.' + d.metric == a.metric)))",
                 "spec.alerts metrics must be in spec.metrics, drift.<metric> for a "
                 "spec.drift metric, or llm_judge with spec.judge",
                 field_path=".alerts"),
        ])
    st = status(["Pending", "Running", "Degraded"], {
        "latestWindow": obj("The last evaluated window.", {
            "start": date_time("Start of the window."),
            "end": date_time("End of the window."),
            "samples": int64("Requests (or queries) in the window.", minimum=0),
            "values": string_map("Metric values in the window (mean), by metric.",
                                 {"description": "Metric value.", "type": "number"},
                                 max_properties=64),
        }),
        "driftScores": string_map("Latest drift score by metric.",
                                  {"description": "Drift score.", "type": "number"},
                                  max_properties=32),
        "firingAlerts": array("Alerts firing now.", firing, max_items=32),
    }, "Observed state, written by the operator and the monitor agent.")
    return dict(
        kind="Monitor", plural="monitors", singular="monitor", short=["mon"],
        desc="Monitor watches a ModelEndpoint or a RagIndex: it collects metrics per window, "
             "tests them for drift against a baseline and fires alerts.",
        spec=spec, status=st,
        columns=[phase_col(), col("Endpoint", ".spec.target.endpointRef.name",
                                  desc="ModelEndpoint watched."),
                 col("Index", ".spec.target.ragIndexRef.name", desc="RagIndex watched."),
                 col("Window", ".spec.window", desc="Window length."),
                 # A list column shows only its first element, hence "first alert".
                 col("Alert", ".status.firingAlerts[0].metric",
                     desc="Metric of the first firing alert (all in status.firingAlerts)."),
                 col("Drift", ".status.driftScores", desc="Latest drift scores by metric."),
                 AGE,
                 col("Interval", ".spec.interval", desc="Evaluation interval.", priority=1),
                 col("Last-Window", ".status.latestWindow.end", "date",
                     "End of the last window.", 1)])


KINDS = [prompt_version, finetune_job, rag_index, eval_run, model_endpoint, monitor]

# The longest name whose children still have valid names: Services need a
# DNS-1035 label (at most 63 characters, starting with a letter), Job names
# become label values. FineTuneJob: <name>-workers; RagIndex:
# <name>-build-<12 hex>; EvalRun: <name>-eval-g<generation>; ModelEndpoint:
# <name>-<variant> (variant names at most 22); Monitor: <name>-monitor.
NAME_MAX = {"FineTuneJob": 55, "RagIndex": 44, "EvalRun": 48, "ModelEndpoint": 40,
            "Monitor": 55}


def name_rule(kind):
    n = NAME_MAX[kind]
    return rule(f"size(self.metadata.name) <= {n} && "
                "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
                f"metadata.name must be a DNS-1035 label of at most {n} characters (lower "
                "case letters, digits and '-', starting with a letter): it prefixes the "
                "names of the resource's Services and Jobs")


def crd(k):
    root = obj(k["desc"], {
        "apiVersion": string("APIVersion defines the versioned schema of this "
                             "representation of an object.", max_length=None),
        "kind": string("Kind is a string value representing the REST resource this object "
                       "represents.", max_length=None),
        "metadata": {"type": "object"},  # the API server allows nothing more here
        "spec": k["spec"],
        "status": k["status"],
    }, required=["spec"], rules=(k.get("root_rules") or []) +
        ([name_rule(k["kind"])] if k["kind"] in NAME_MAX else []) or None)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{k['plural']}.{GROUP}",
                     "labels": {"app.kubernetes.io/name": "llmops",
                                "app.kubernetes.io/part-of": "llmops"}},
        "spec": {
            "group": GROUP,
            "names": {"kind": k["kind"], "listKind": k["kind"] + "List",
                      "plural": k["plural"], "singular": k["singular"],
                      "shortNames": k["short"], "categories": [CATEGORY]},
            "scope": "Namespaced",
            "versions": [{
                "name": VERSION, "served": True, "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": k["columns"],
                "schema": {"openAPIV3Schema": root},
            }],
        },
    }


class Dumper(yaml.SafeDumper):
    pass


def _repr_list(dumper, data):
    flow = len(data) <= 20 and all(isinstance(x, (str, int)) and len(str(x)) < 24 for x in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


Dumper.add_representer(list, _repr_list)
Dumper.ignore_aliases = lambda *a: True


def render(k):
    head = (f"# {k['kind']} ({GROUP}/{VERSION}), short name {', '.join(k['short'])}, "
            f"category {CATEGORY}.\n"
            "# Generated by crds/gen_crds.py: edit that and rerun it; do not edit by hand.\n")
    return head + yaml.dump(crd(k), Dumper=Dumper, sort_keys=False, width=96,
                            allow_unicode=True)


def main(argv):
    check = "--check" in argv
    stale = []
    for make in KINDS:
        k = make()
        path = HERE / f"{k['plural']}.{GROUP}.yaml"
        text = render(k)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
    if stale:
        print("stale (run crds/gen_crds.py):", ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
