#!/usr/bin/env bash
# Build the serving image and push it to Azure Container Registry.
# Not run by CI (no Docker engine there); see docs/deployment.md.
#
#   ACR_NAME=myregistry IMAGE_TAG=0.1.0 deploy/build_push.sh
#
# Needs: az (logged in: `az login`), docker with buildx, the model repositories built
# (`make build build-gpu`; the script builds them when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

: "${ACR_NAME:?set ACR_NAME to your Azure Container Registry name (without .azurecr.io)}"
IMAGE_NAME=${IMAGE_NAME:-triton-scoring-stack}
IMAGE_TAG=${IMAGE_TAG:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
PLATFORM=${PLATFORM:-linux/amd64}
REGISTRY="${ACR_NAME}.azurecr.io"
IMAGE="${REGISTRY}/${IMAGE_NAME}:${IMAGE_TAG}"

if [ ! -d build/model_repository_gpu ] || [ ! -d build/model_repository_cpu_container ]; then
  make build-gpu build-cpu-container
fi
# The container's ONNX Runtime (1.19.2) and Python (3.10) are older than the venv's: check first.
.venv/bin/python -m deploy.repository_check build/model_repository_gpu build/model_repository_cpu_container
.venv/bin/python -m deploy.container_deps check

az acr login --name "$ACR_NAME"
docker buildx build \
  --platform "$PLATFORM" \
  --file deploy/Dockerfile \
  --build-arg VERSION="$IMAGE_TAG" \
  --build-arg REVISION="$(git rev-parse HEAD)" \
  --tag "$IMAGE" \
  --push \
  .
echo "pushed $IMAGE"
echo "next: kustomize edit set image triton-scoring-stack=$IMAGE (in k8s/overlays/gpu), or"
echo "      python -m deploy.aml dry-run --image $IMAGE"
