#!/usr/bin/env bash
# Create the Azure ML online endpoint(s) and deployments from the YAML that
# `python -m deploy.aml dry-run` writes. Not run by CI; see docs/deployment.md.
#
#   RESOURCE_GROUP=rg-triton WORKSPACE=mlw-triton IMAGE=myregistry.azurecr.io/triton-scoring-stack:0.1.0 \
#     deploy/aml_deploy.sh [managed|kubernetes|nocode]
#   A new model version, blue/green on the managed endpoint (SERVING: the deployment serving now):
#     VERSION=2 PERCENT=10 deploy/aml_deploy.sh rollout    # register it, deploy triton-v2, send it 10%
#     VERSION=2 PERCENT=100 deploy/aml_deploy.sh shift     # then all of it (delete $SERVING after)
#     VERSION=2 deploy/aml_deploy.sh rollback              # all traffic back to $SERVING
#
# Needs: az with the ml extension (`az extension add -n ml`), logged in; the image pushed
# (deploy/build_push.sh) to a registry the workspace can pull from; for `kubernetes`, an AKS
# cluster with the Azure ML extension attached to the workspace as compute $K8S_COMPUTE.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${RESOURCE_GROUP:?set RESOURCE_GROUP}"
: "${WORKSPACE:?set WORKSPACE}"
: "${IMAGE:?set IMAGE (the pushed image)}"
TARGET=${1:-managed}
ENDPOINT=${ENDPOINT:-triton-scoring}
K8S_ENDPOINT=${K8S_ENDPOINT:-triton-scoring-aks}
K8S_COMPUTE=${K8S_COMPUTE:-aks-gpu}
OUT=${OUT:-build/aml}
VERSION=${VERSION:-2}
PERCENT=${PERCENT:-10}
SERVING=${SERVING:-triton-custom}
ml=(az ml)
defaults=(--resource-group "$RESOURCE_GROUP" --workspace-name "$WORKSPACE")

[ -d build/model_repository_gpu ] || make build-gpu
.venv/bin/python -m deploy.aml native-repository
.venv/bin/python -m deploy.aml dry-run --out "$OUT" --image "$IMAGE" \
  --endpoint "$ENDPOINT" --k8s-endpoint "$K8S_ENDPOINT" --k8s-compute "$K8S_COMPUTE" \
  --rollout-version "$VERSION" --rollout-percent "$PERCENT" --serving-deployment "$SERVING"

case "$TARGET" in
  managed)
    "${ml[@]}" online-endpoint create "${defaults[@]}" -f "$OUT/endpoint-managed.yml"
    "${ml[@]}" online-deployment create "${defaults[@]}" -f "$OUT/deployment-managed-custom.yml" --all-traffic
    name=$ENDPOINT ;;
  kubernetes)
    # one-time, outside this script: install the Azure ML extension on the cluster and attach it:
    #   az k8s-extension create --name azureml --extension-type Microsoft.AzureML.Kubernetes \
    #     --cluster-type managedClusters --cluster-name <aks> --resource-group "$RESOURCE_GROUP" \
    #     --scope cluster --config enableInference=True inferenceRouterServiceType=LoadBalancer allowInsecureConnections=False
    #   az ml compute attach --type Kubernetes --name "$K8S_COMPUTE" --identity-type SystemAssigned \
    #     --resource-id $(az aks show -g "$RESOURCE_GROUP" -n <aks> --query id -o tsv) "${defaults[@]}"
    "${ml[@]}" online-endpoint create "${defaults[@]}" -f "$OUT/endpoint-kubernetes.yml"
    "${ml[@]}" online-deployment create "${defaults[@]}" -f "$OUT/deployment-kubernetes-custom.yml" --all-traffic
    name=$K8S_ENDPOINT ;;
  nocode)
    "${ml[@]}" online-endpoint show "${defaults[@]}" -n "$ENDPOINT" >/dev/null 2>&1 \
      || "${ml[@]}" online-endpoint create "${defaults[@]}" -f "$OUT/endpoint-managed.yml"
    # no traffic: call it with the header `azureml-model-deployment: triton-nocode`
    "${ml[@]}" online-deployment create "${defaults[@]}" -f "$OUT/deployment-managed-nocode.yml"
    name=$ENDPOINT ;;
  rollout)
    "${ml[@]}" model create "${defaults[@]}" -f "$OUT/model-repository.yml" --version "$VERSION"
    # no traffic yet: the deployment becomes ready (deep check) before any request reaches it
    "${ml[@]}" online-deployment create "${defaults[@]}" -f "$OUT/deployment-managed-rollout.yml"
    "${ml[@]}" online-endpoint update "${defaults[@]}" -f "$OUT/endpoint-managed-traffic.yml"
    name=$ENDPOINT ;;
  shift)
    "${ml[@]}" online-endpoint update "${defaults[@]}" -n "$ENDPOINT" \
      --traffic "$SERVING=$((100 - PERCENT)) triton-v$VERSION=$PERCENT"
    name=$ENDPOINT ;;
  rollback)
    "${ml[@]}" online-endpoint update "${defaults[@]}" -n "$ENDPOINT" --traffic "$SERVING=100 triton-v$VERSION=0"
    name=$ENDPOINT ;;
  *) echo "usage: $0 [managed|kubernetes|nocode|rollout|shift|rollback]" >&2; exit 2 ;;
esac

uri=$("${ml[@]}" online-endpoint show "${defaults[@]}" -n "$name" --query scoring_uri -o tsv)
echo "scoring URI: $uri"
echo "key: az ml online-endpoint get-credentials ${defaults[*]} -n $name --query primaryKey -o tsv"
echo "ask: python -m faq.client --url \"\${uri%/}\" --bearer-token <key> \"how to clone an object\""
