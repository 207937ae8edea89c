# The two entry points of README.md. Both work on a fresh Debian machine as root:
# they install the system packages and a virtual environment, then run.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
APT_PACKAGES := nfs-ganesha nfs-ganesha-vfs nfs-common libnfs-utils rpcbind iproute2 util-linux
# A real control plane (tests/cluster/): etcd here, kube-apiserver from ../shared/k8s (xz-packed).
CLUSTER_PACKAGES := etcd-server openssl xz-utils
# A real kernel for the node plugin (tests/vm/, the demo): Debian's kernel under QEMU.
VM_PACKAGES  := qemu-system-x86 linux-image-amd64 busybox-static cpio kmod

.PHONY: demo test verify system-deps venv stubs manifests

demo: system-deps venv
	$(PY) -m cfs_demo

test: system-deps venv
	$(PY) -m pytest -n 2 --dist loadfile -q -rfEs

# The architecture's rules checked by tools: lint and format (ruff), types (mypy; strict on the
# cloud client and the controller/node contract), layer contracts (import-linter, pyproject.toml).
verify: system-deps venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	$(PYTHON) -c "import ensurepip" >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@missing=""; for p in $(VM_PACKAGES) $(CLUSTER_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# Regenerate the checked-in CSI stubs from proto/csi.proto.
stubs: venv
	$(PY) -m grpc_tools.protoc --proto_path=cfs_csi/csipb=proto \
		--python_out=driver --grpc_python_out=driver --pyi_out=driver proto/csi.proto

# Copy the operator's CRDs into the chart and re-render deploy/manifests/ from the chart.
manifests: venv
	$(PY) scripts/render_manifests.py
