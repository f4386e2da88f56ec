# The sandbox image: Python 3.11, torch (CPU), numpy, pandas, matplotlib, pytest and the grading
# harness (grader/harness only: it imports nothing else), the assignments' checks, probes and data,
# and the reference solutions.
#
# `grader build-image` builds it with the classic builder (no BuildKit, no `# syntax=` line) from
# a context it assembles: this file, a pyproject.toml holding only the student extra (pinned to
# the host's versions), wheelhouse/ (wheels downloaded on the host, so nothing is fetched from
# inside), grader/harness, assignments/*/{assignment.toml,probes.py,checks,data} and reference/. BASE is any Debian-like image with python3 3.11 and its venv
# module: python:3.11-slim where a registry is reachable, else a base made locally with
# debootstrap + `docker import` (that is what `grader build-image` does by default).
# `docker build .` works too where python:3.11-slim can be pulled (pip then installs from the
# index when the context has no wheelhouse/).
ARG BASE=python:3.11-slim

# ---- builder: the virtual environment, trimmed and byte-compiled -----------------------------
FROM ${BASE} AS builder
# `grader build-image` keeps only the newest builder image (the layer cache of the next build).
LABEL grader.stage=builder
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    MPLBACKEND=Agg MPLCONFIGDIR=/opt/grader/mplconfig PYTHONPATH=/opt/grader
# `wheelhouse*` may match nothing (then pip uses the index); pyproject.toml always matches.
COPY pyproject.toml wheelhouse* /build/
RUN python3 -m venv /opt/venv \
 && python3 -c "import tomllib; print('\n'.join(tomllib.load(open('/build/pyproject.toml', 'rb'))['project']['optional-dependencies']['student']))" > /build/requirements.txt \
 && if ls /build/*.whl >/dev/null 2>&1; then index="--no-index --find-links /build"; else index=""; fi \
 && /opt/venv/bin/python -m pip install --no-compile $index -r /build/requirements.txt \
 && /opt/venv/bin/python -m pip uninstall -y -q pip \
 && cd /opt/venv/lib/python3.11/site-packages \
 && rm -rf torch/test torch/include torch/share/cmake \
 && find torch/bin -mindepth 1 -maxdepth 1 ! -name torch_shm_manager -exec rm -rf {} + \
 && find numpy pandas matplotlib sympy PIL -depth -type d -name tests -exec rm -rf {} + \
 && rm -rf matplotlib/mpl-data/sample_data \
 && find /opt/venv -name __pycache__ -prune -exec rm -rf {} + \
 && rm -rf /build

COPY grader/__init__.py /opt/grader/grader/__init__.py
COPY grader/harness/ /opt/grader/grader/harness/
# Byte-compile what a sandbox imports (a read-only container cannot write .pyc: without them the
# warm-up takes twice as long), not the whole environment: run the fork server's own warm-up,
# and compile the harness and pytest, which the grader process imports after the fork.
# The font cache made here is the one every container starts with.
RUN mkdir -p /opt/grader/mplconfig \
 && python -c "from grader.harness.forkserver import warm_up; print(warm_up())" \
 && python -m compileall -q /opt/grader/grader \
    /opt/venv/lib/python3.11/site-packages/_pytest /opt/venv/lib/python3.11/site-packages/pluggy \
    /opt/venv/lib/python3.11/site-packages/iniconfig /opt/venv/lib/python3.11/site-packages/packaging

# ---- the image: the base, two users, the venv and the grading material -----------------------
FROM ${BASE}
ARG STUDENT_UID=61000
ARG GRADER_UID=61001
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 PYTHONPATH=/opt/grader PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    MPLBACKEND=Agg MPLCONFIGDIR=/opt/grader/mplconfig
# High uids, unlikely to belong to anyone on the host (processes of a container are the host's too).
RUN groupadd --gid ${STUDENT_UID} student \
 && useradd --key UID_MAX=65000 --uid ${STUDENT_UID} --gid student --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin student \
 && groupadd --gid ${GRADER_UID} grader \
 && useradd --key UID_MAX=65000 --uid ${GRADER_UID} --gid grader --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin grader
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/grader /opt/grader
COPY assignments/ /opt/grader/assignments/
COPY --chown=grader:grader reference/ /opt/grader/reference/
# Reference solutions and checks: the grader uid only (mode 0700 directories, 0600 files).
# probes.py, data/ and the harness: readable by everyone, writable by no one.
RUN set -e; \
    chmod -R u=rwX,go=rX /opt/grader/assignments; \
    for checks in /opt/grader/assignments/*/checks; do \
      if [ -d "$checks" ]; then chown -R grader:grader "$checks"; chmod -R u=rwX,go= "$checks"; fi; \
    done; \
    chown -R grader:grader /opt/grader/reference; \
    chmod -R u=rwX,go= /opt/grader/reference
LABEL org.opencontainers.image.title="grader sandbox" \
      grader.student_uid="${STUDENT_UID}" grader.grader_uid="${GRADER_UID}" \
      grader.assignments_dir=/opt/grader/assignments grader.reference_dir=/opt/grader/reference
WORKDIR /tmp
CMD ["python", "-m", "grader.harness.forkserver", "{}"]
