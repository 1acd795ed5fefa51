"""Offline checks of rendered Kubernetes manifests (Helm charts, kustomize overlays), by concern.

Three layers, all without a cluster or network:

1. **Schemas** (:mod:`.schemas`): every object against the Kubernetes and KServe schemas of
   every supported release; a kind with no schema is an error.
2. **KServe semantics** (:mod:`.kserve`): what the webhook enforces or KServe relies on, and
   what Knative accepts in Serverless mode.
3. **Stack invariants**: containers (:mod:`.workloads`: pinned images, resources, restricted
   security contexts, probes), references between objects (:mod:`.references`: ConfigMaps,
   Secrets, ServiceAccounts, PVCs, Services), NetworkPolicies (:mod:`.network`), the Feast
   wiring (:mod:`.feast`); :func:`.stack.check_stack` runs them all.

Shared parts: :mod:`.tools` (helm/kubectl lookup, running them), :mod:`.objects` (strict YAML
loading, names, the contract's constants), :mod:`.pods` (every pod template of a render,
label selectors), :mod:`.images` (registry parsing as Knative does it).

Each ``check_*`` returns a list of human-readable problems (tests assert it is empty, so one
run reports every problem at once) and has a failing fixture in tests/deploy/test_checks.py.
"""
