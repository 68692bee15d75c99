# flowscope's image: the CLI and every component (collector, relay, UI) as
# they land. The collector needs a privileged container with the host network
# and Debian's BCC; see docker-compose.yml.
FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-bpfcc iproute2 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/flowscope
COPY . .
RUN python3 -m venv --system-site-packages /opt/flowscope/venv \
 && /opt/flowscope/venv/bin/pip install --no-cache-dir ".[store]"
ENV PATH=/opt/flowscope/venv/bin:$PATH
ENTRYPOINT ["flowscope"]
CMD ["--help"]
