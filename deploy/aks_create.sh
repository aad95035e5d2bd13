#!/usr/bin/env bash
# Create an AKS cluster with a GPU node pool for Triton, attach the registry, and install
# the cluster add-ons the manifests in k8s/ rely on. Not run by CI; see docs/deployment.md.
#
#   RESOURCE_GROUP=rg-triton LOCATION=westeurope CLUSTER=aks-triton ACR_NAME=myregistry \
#     deploy/aks_create.sh
#
# Needs: az (logged in), kubectl, helm. GPU quota for GPU_VM_SIZE in LOCATION.
set -euo pipefail

: "${RESOURCE_GROUP:?set RESOURCE_GROUP}"
: "${CLUSTER:?set CLUSTER}"
: "${ACR_NAME:?set ACR_NAME}"
LOCATION=${LOCATION:-westeurope}
SYSTEM_VM_SIZE=${SYSTEM_VM_SIZE:-Standard_D4s_v5}
GPU_POOL=${GPU_POOL:-gpunp}                       # k8s/overlays/gpu selects this pool by name
GPU_VM_SIZE=${GPU_VM_SIZE:-Standard_NC8as_T4_v3}  # the gpu overlay's requests fit this size
GPU_MIN=${GPU_MIN:-1}
GPU_MAX=${GPU_MAX:-4}
NVIDIA_PLUGIN_VERSION=${NVIDIA_PLUGIN_VERSION:-0.17.0}

az group create --name "$RESOURCE_GROUP" --location "$LOCATION"
az acr show --name "$ACR_NAME" >/dev/null 2>&1 \
  || az acr create --resource-group "$RESOURCE_GROUP" --name "$ACR_NAME" --sku Standard

# Azure CNI overlay with Cilium enforces the NetworkPolicy in k8s/base/networkpolicy.yaml.
az aks create \
  --resource-group "$RESOURCE_GROUP" \
  --name "$CLUSTER" \
  --location "$LOCATION" \
  --node-count 2 \
  --node-vm-size "$SYSTEM_VM_SIZE" \
  --network-plugin azure \
  --network-plugin-mode overlay \
  --network-dataplane cilium \
  --attach-acr "$ACR_NAME" \
  --enable-managed-identity \
  --generate-ssh-keys

# GPU pool: tainted so only pods that tolerate sku=gpu (the Triton pods) land there;
# autoscaled by the cluster autoscaler as the HPA adds replicas.
az aks nodepool add \
  --resource-group "$RESOURCE_GROUP" \
  --cluster-name "$CLUSTER" \
  --name "$GPU_POOL" \
  --node-vm-size "$GPU_VM_SIZE" \
  --node-taints sku=gpu:NoSchedule \
  --enable-cluster-autoscaler \
  --min-count "$GPU_MIN" \
  --max-count "$GPU_MAX" \
  --node-count "$GPU_MIN"

az aks get-credentials --resource-group "$RESOURCE_GROUP" --name "$CLUSTER" --overwrite-existing

# NVIDIA device plugin: advertises nvidia.com/gpu on the GPU nodes (AKS installs the driver).
helm repo add nvdp https://nvidia.github.io/k8s-device-plugin
helm repo add prometheus-community https://prometheus-community.github.io/helm-charts
helm repo add ingress-nginx https://kubernetes.github.io/ingress-nginx
helm repo add jetstack https://charts.jetstack.io
helm repo update
helm upgrade --install nvdp nvdp/nvidia-device-plugin \
  --namespace nvidia-device-plugin --create-namespace \
  --version "$NVIDIA_PLUGIN_VERSION" \
  --set-json 'tolerations=[{"key":"sku","operator":"Equal","value":"gpu","effect":"NoSchedule"}]'

# Prometheus (scrapes the ServiceMonitor) and the adapter that serves the HPA's queue-time metric.
helm upgrade --install kube-prometheus-stack prometheus-community/kube-prometheus-stack \
  --namespace monitoring --create-namespace
helm upgrade --install prometheus-adapter prometheus-community/prometheus-adapter \
  --namespace monitoring -f k8s/monitoring/prometheus-adapter-values.yaml

# Ingress controller (HTTPS termination) and cert-manager (issues the triton-tls certificate).
helm upgrade --install ingress-nginx ingress-nginx/ingress-nginx \
  --namespace ingress-nginx --create-namespace
helm upgrade --install cert-manager jetstack/cert-manager \
  --namespace cert-manager --create-namespace --set crds.enabled=true

kubectl get nodes -L kubernetes.azure.com/agentpool
echo "cluster ready; next: create the Secrets and kubectl apply -k k8s/overlays/gpu (docs/deployment.md)"
