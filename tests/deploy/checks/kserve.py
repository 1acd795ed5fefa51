"""What KServe's webhook and controller require of the InferenceService and its runtime
(runtime and model-format resolution, deployment-mode dependent autoscaling, canary limits,
injected transformer flags), and what Knative's field masks accept in Serverless mode."""

from __future__ import annotations

import re
from typing import Any

from tests.deploy.checks.objects import ISVC_NAME, Obj, ident
from tests.deploy.checks.pods import _matches

SERVERLESS_MODES = {"Serverless", "Knative"}
STANDARD_MODES = {"RawDeployment", "Standard"}
LEGACY_MODES = {"Serverless", "RawDeployment"}


#: Container securityContext fields Knative Serving accepts in a revision (its webhook
#: rejects others with "must not set the field(s)"): knative/serving fieldmask.go;
#: allowPrivilegeEscalation and seccompProfile since Knative 1.8/1.9. `privileged` (false
#: only) needs Knative >= 1.17, so it is left out for older installations.
KNATIVE_CONTAINER_SECURITY_FIELDS = {
    "capabilities",
    "readOnlyRootFilesystem",
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "allowPrivilegeEscalation",
    "seccompProfile",
}
#: Pod-level fields of an InferenceService component that need a Knative feature flag
#: (kubernetes.podspec-*): avoided so the charts work on a default Knative install.
KNATIVE_GATED_POD_FIELDS = {
    "securityContext",
    "affinity",
    "nodeSelector",
    "tolerations",
    "runtimeClassName",
    "priorityClassName",
    "schedulerName",
    "hostAliases",
    "initContainers",
    "topologySpreadConstraints",
    "dnsPolicy",
    "dnsConfig",
    "shareProcessNamespace",
}


def check_knative_compatible(objs: list[Obj]) -> list[str]:
    """In Serverless mode, what KServe hands to Knative must pass Knative's field masks."""
    if deployment_mode(objs) not in SERVERLESS_MODES:
        return []
    problems: list[str] = []
    isvc = _isvc(objs)
    runtimes = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ServingRuntime"}
    for comp in ("predictor", "transformer"):
        spec = isvc["spec"].get(comp) or {}
        for key in sorted(KNATIVE_GATED_POD_FIELDS & set(spec)):
            problems.append(f"{comp}: `{key}` needs a Knative feature flag (config-features)")
        containers = list(spec.get("containers") or [])
        runtime = runtimes.get((spec.get("model") or {}).get("runtime", ""))
        if runtime:
            containers += runtime["spec"]["containers"]
        for c in containers:
            extra = set(c.get("securityContext") or {}) - KNATIVE_CONTAINER_SECURITY_FIELDS
            if extra:
                problems.append(
                    f"{comp}[{c['name']}]: Knative rejects securityContext fields {sorted(extra)}"
                )
            if len(c.get("ports") or []) > 1:
                problems.append(f"{comp}[{c['name']}]: Knative allows one container port")
            for probe in ("readinessProbe", "livenessProbe"):
                port = ((c.get(probe) or {}).get("httpGet") or {}).get("port")
                if port is not None and port not in {
                    p.get("containerPort") for p in c.get("ports") or []
                }:
                    problems.append(
                        f"{comp}[{c['name']}]: {probe} port {port} is not the serving port"
                    )
    return problems


def _isvc(objs: list[Obj]) -> Obj:
    isvcs = [o for o in objs if o["kind"] == "InferenceService"]
    if len(isvcs) > 1:  # an ensemble adds predictor-only members: the entry has the transformer
        isvcs = [o for o in isvcs if o["spec"].get("transformer")]
    assert len(isvcs) == 1, f"expected one InferenceService, got {[ident(o) for o in isvcs]}"
    return isvcs[0]


def deployment_mode(objs: list[Obj]) -> str:
    return (_isvc(objs)["metadata"].get("annotations") or {}).get(
        "serving.kserve.io/deploymentMode", ""
    )


def check_kserve(objs: list[Obj], *, metrics: bool = True) -> list[str]:
    """What KServe's webhook and controller require of our InferenceService + runtime.

    `metrics`: the render is expected to enable Prometheus scraping (chart default).
    """
    problems: list[str] = []
    isvc = _isvc(objs)
    name = isvc["metadata"]["name"]
    ann = isvc["metadata"].get("annotations") or {}
    spec = isvc["spec"]
    # The contract's name, or the Helm chart's release-derived "<release>-click-model".
    if name != ISVC_NAME and not name.endswith(f"-{ISVC_NAME}"):
        problems.append(f"InferenceService is {name!r}, the contract says {ISVC_NAME!r}")
    if not re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name) or len(name) > 45:
        problems.append(f"InferenceService name {name!r} is not a DNS-1035 label of <= 45 chars")
    mode = ann.get("serving.kserve.io/deploymentMode")
    if mode not in SERVERLESS_MODES | STANDARD_MODES:
        problems.append(f"deploymentMode annotation is {mode!r}")
    elif mode in LEGACY_MODES:
        problems.append(
            f"deploymentMode {mode!r} is KServe <= 0.15's name: 0.16+ rejects every update of "
            "the InferenceService (kserve/kserve#4798); use Knative / Standard"
        )
    serverless = mode in SERVERLESS_MODES

    pred = spec["predictor"]
    if "transformer" not in spec and pred.get("containers"):
        return problems + _check_collocated(name, spec)
    frameworks = [
        k
        for k in (
            "sklearn",
            "xgboost",
            "tensorflow",
            "pytorch",
            "onnx",
            "triton",
            "lightgbm",
            "pmml",
            "paddle",
            "huggingface",
        )
        if k in pred
    ]
    if bool(pred.get("model")) + bool(pred.get("containers")) + len(frameworks) != 1:
        problems.append("predictor must have exactly one of model / containers / a framework")
    model = pred.get("model") or {}
    runtimes = {
        o["metadata"]["name"]: o
        for o in objs
        if o["kind"] in ("ServingRuntime", "ClusterServingRuntime")
    }
    rt = runtimes.get(model.get("runtime", ""))
    if rt is None:
        problems.append(
            f"predictor runtime {model.get('runtime')!r} is not a rendered ServingRuntime"
        )
    else:
        rspec = rt["spec"]
        formats = {(f["name"], f.get("version")) for f in rspec.get("supportedModelFormats") or []}
        mf = model.get("modelFormat") or {}
        if (mf.get("name"), mf.get("version")) not in formats and (
            mf.get("name"),
            None,
        ) not in formats:
            problems.append(f"runtime {rt['metadata']['name']} does not support model format {mf}")
        if model.get("protocolVersion") not in (
            rspec.get("protocolVersions") or [model.get("protocolVersion")]
        ):
            problems.append(f"runtime does not serve protocol {model.get('protocolVersion')}")
        (kc,) = [c for c in rspec["containers"] if c["name"] == "kserve-container"] or [None]
        if kc is None:
            problems.append("ServingRuntime has no container named kserve-container")
        else:
            args = kc.get("args") or []
            for want in ("--model_name={{.Name}}", "--model_dir=/mnt/models", "--http_port=8080"):
                if want not in args:
                    problems.append(f"ServingRuntime args lack {want!r}: {args}")
            if kc.get("command"):
                problems.append(
                    "ServingRuntime overrides the image ENTRYPOINT (python -m predictor)"
                )
            if not any(p.get("containerPort") == 8080 for p in kc.get("ports") or []):
                problems.append("ServingRuntime container does not declare port 8080")
            if "feast-kserve-predictor" not in kc.get("image", ""):
                problems.append(
                    f"ServingRuntime image {kc.get('image')} is not feast-kserve-predictor"
                )
    uri = model.get("storageUri", "")
    if not re.fullmatch(r"(pvc|s3|gs|https?|hdfs|webhdfs|oci|hf)://\S+", uri):
        problems.append(f"storageUri {uri!r} has no scheme KServe's storage initializer supports")
    if model.get("protocolVersion") != "v2":
        problems.append("predictor protocolVersion is not v2")
    if not {"cpu", "memory"} <= set((model.get("resources") or {}).get("requests") or {}):
        problems.append(
            "predictor.model has no resource requests: KServe's defaulting webhook "
            "would replace the ServingRuntime's with its cluster-wide defaults"
        )

    trans = spec.get("transformer") or {}
    tcs = trans.get("containers") or []
    if len(tcs) != 1 or tcs[0].get("name") != "kserve-container":
        problems.append("transformer must have exactly one container named kserve-container")
    else:
        args = tcs[0].get("args") or []
        joined = " ".join(args)
        if "--predictor_protocol v2" not in joined:
            problems.append(f"transformer args lack --predictor_protocol v2: {args}")
        for injected in ("--model_name", "--predictor_host", "--http_port"):
            if injected in joined:
                problems.append(f"transformer sets {injected}, which KServe injects")
        if "feast-kserve-transformer" not in tcs[0].get("image", ""):
            problems.append("transformer image is not feast-kserve-transformer")
        if not any(p.get("containerPort") == 8080 for p in tcs[0].get("ports") or []):
            problems.append(
                "transformer does not declare port 8080 (KServe passes --http_port 8080)"
            )

    for comp_name in ("predictor", "transformer"):
        comp = spec.get(comp_name) or {}
        lo, hi = comp.get("minReplicas", 1), comp.get("maxReplicas")
        if lo < 0 or (hi is not None and hi < max(lo, 1)):
            problems.append(f"{comp_name}: minReplicas {lo} / maxReplicas {hi}")
        cann = comp.get("annotations") or {}
        if serverless:
            if (
                cann.get("autoscaling.knative.dev/class", "kpa.autoscaling.knative.dev")
                != "kpa.autoscaling.knative.dev"
            ):
                problems.append(f"{comp_name}: Knative autoscaler class is not KPA")
            if cann.get("autoscaling.knative.dev/metric") not in ("concurrency", "rps"):
                problems.append(
                    f"{comp_name}: autoscaling.knative.dev/metric must be concurrency or rps"
                )
            target = cann.get("autoscaling.knative.dev/target", "")
            if not target.isdigit() or int(target) < 1:
                problems.append(
                    f"{comp_name}: autoscaling.knative.dev/target {target!r} "
                    "is not a positive integer"
                )
            if comp.get("scaleMetric") in ("cpu", "memory"):
                problems.append(
                    f"{comp_name}: scaleMetric {comp['scaleMetric']} needs HPA (RawDeployment)"
                )
            if metrics and (
                cann.get("prometheus.io/scrape") != "true"
                or ann.get("serving.kserve.io/enable-prometheus-scraping") != "true"
            ):
                problems.append(f"{comp_name}: Prometheus scraping not enabled")
        else:
            if lo < 1:
                problems.append(f"{comp_name}: minReplicas {lo}: no scale to zero without Knative")
            if comp.get("scaleMetric") not in ("cpu", "memory"):
                problems.append(f"{comp_name}: scaleMetric must be cpu or memory for the HPA")
            if not 1 <= int(comp.get("scaleTarget", 0)) <= 100:
                problems.append(f"{comp_name}: scaleTarget {comp.get('scaleTarget')} not in 1..100")
            if comp.get("canaryTrafficPercent") is not None:
                problems.append(f"{comp_name}: canaryTrafficPercent needs Serverless mode")
            if metrics and (
                cann.get("prometheus.io/port") != "8080"
                or cann.get("prometheus.io/scrape") != "true"
            ):
                problems.append(
                    f"{comp_name}: prometheus.io/scrape+port 8080 missing (no queue-proxy)"
                )
            if any(k.startswith("autoscaling.knative.dev/") for k in cann):
                problems.append(f"{comp_name}: Knative annotations in RawDeployment mode")
            if lo >= 2 and not any(
                o["kind"] == "PodDisruptionBudget"
                and _matches(o["spec"]["selector"], comp.get("labels") or {})
                for o in objs
            ):
                problems.append(f"{comp_name}: {lo} replicas but no PodDisruptionBudget")
        if "canaryTrafficPercent" in comp and not 0 <= comp["canaryTrafficPercent"] <= 100:
            problems.append(
                f"{comp_name}: canaryTrafficPercent {comp['canaryTrafficPercent']} not in 0..100"
            )
    if not serverless and ann.get("serving.kserve.io/autoscalerClass") != "hpa":
        problems.append("RawDeployment mode without serving.kserve.io/autoscalerClass: hpa")
    if serverless and pred.get("minReplicas", 1) == 0 and len(tcs) == 1:
        # The first call after the predictor idled waits for its cold start in the activator.
        env = {e["name"]: e.get("value") for e in tcs[0].get("env") or []}
        timeout = float(env.get("TRANSFORMER_PREDICTOR_TIMEOUT_S") or 2.0)
        if timeout < 60:
            problems.append(
                f"the predictor scales to zero but the transformer gives a predictor call only "
                f"{timeout:g}s (TRANSFORMER_PREDICTOR_TIMEOUT_S): every cold start would be a 504"
            )
    return problems


def _check_collocated(name: str, spec: dict[str, Any]) -> list[str]:
    """Collocated mode: one predictor container that is the transformer scoring the model."""
    problems: list[str] = []
    pred = spec["predictor"]
    cs = pred.get("containers") or []
    if len(cs) != 1 or cs[0].get("name") != "kserve-container":
        return ["collocated predictor must have exactly one container named kserve-container"]
    c = cs[0]
    joined = " ".join(c.get("args") or [])
    for want in (f"--model_name {name}", "--http_port 8080", "--collocated_model_dir /mnt/models"):
        if want not in joined:
            problems.append(f"collocated container args lack {want!r}: {joined}")
    if "--predictor_" in joined:
        problems.append("collocated container is given predictor flags")
    if "feast-kserve-collocated" not in c.get("image", ""):
        problems.append(f"collocated image {c.get('image')} is not feast-kserve-collocated")
    env = {e["name"]: e.get("value") for e in c.get("env") or []}
    uri = env.get("STORAGE_URI") or ""
    if not re.fullmatch(r"(pvc|s3|gs|https?|hdfs|webhdfs|oci|hf)://\S+", uri):
        problems.append(f"collocated STORAGE_URI {uri!r}: KServe would not mount a model")
    if "canaryTrafficPercent" in pred:
        problems.append("collocated mode has no predictor revision to canary")
    if not any(p.get("containerPort") == 8080 for p in c.get("ports") or []):
        problems.append("collocated container does not declare port 8080")
    return problems
