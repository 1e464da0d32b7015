# A free-threaded CPython (built with --disable-gil) as a base image for docker/Dockerfile.
#
#   docker build -f docker/free-threaded.Dockerfile --build-arg BASE_IMAGE=poolbench-base:trixie \
#       -t poolbench-base:3.13t .            (docker/python-image.sh 3.13t does this)
#
# Debian ships no free-threaded interpreter, so this builds one from a CPython source tarball:
# PYTHON_SOURCE is `debian:python3.13` (the upstream tarball of the base's own Debian source
# package, fetched with apt-get source), an http(s) URL of a tarball (python.org's), or the name of
# a tarball placed in docker/python-source/. Two stages: the compiler and headers stay in the first;
# the second gets the installed interpreter only, on the same base (whose Python packages already
# pulled in the runtime libraries: libssl, libffi, zlib, bz2, lzma, sqlite).
ARG BASE_IMAGE=poolbench-base:trixie
FROM ${BASE_IMAGE} AS build
ARG PYTHON_SOURCE=debian:python3.13
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get -o Acquire::Check-Valid-Until=false update -qq \
 && apt-get install -y -qq --no-install-recommends build-essential pkg-config xz-utils curl dpkg-dev \
      libssl-dev zlib1g-dev libffi-dev libbz2-dev liblzma-dev libsqlite3-dev >/dev/null
WORKDIR /build
COPY docker/python-source/ /build/given/
RUN set -eu; \
    case "$PYTHON_SOURCE" in \
      debian:*) pkg=${PYTHON_SOURCE#debian:}; \
        sed -n 's/^deb \(.*\)$/deb-src \1/p' /etc/apt/sources.list > /etc/apt/sources.list.d/src.list; \
        apt-get -o Acquire::Check-Valid-Until=false update -qq; \
        apt-get source --download-only -qq "$pkg" >/dev/null; \
        tarball=$(ls ${pkg}_*.orig.tar.* | grep -v '\.asc$' | head -n 1) ;; \
      http://*|https://*) curl -fsSL -o source.tar "$PYTHON_SOURCE"; tarball=source.tar ;; \
      *) tarball="given/$PYTHON_SOURCE"; [ -f "$tarball" ] \
           || { echo "PYTHON_SOURCE=$PYTHON_SOURCE: no such file in docker/python-source/" >&2; exit 1; } ;; \
    esac; \
    mkdir src && tar -xf "$tarball" -C src --strip-components=1
RUN cd src && ./configure --disable-gil --prefix=/opt/python --with-ensurepip=install >/dev/null \
 && make -j"$(nproc)" >/dev/null && make install >/dev/null \
 && /opt/python/bin/python3 -c "import sys; assert not sys._is_gil_enabled(), 'the GIL is on'"

FROM ${BASE_IMAGE}
COPY --from=build /opt/python /opt/python
# python3 now means the free-threaded interpreter (docker/Dockerfile makes its venv with it).
RUN ln -sf /opt/python/bin/python3 /usr/local/bin/python3 \
 && python3 -c "import sys, sysconfig; assert sysconfig.get_config_var('Py_GIL_DISABLED'); print(sys.version)"
