"""The swarm's edge: HAProxy in front of the gateway replicas.

Swarm's ingress routing mesh needs IPVS, which some kernels (these machines') lack, and a
host-mode port serves one task per node. So the gateway runs with DNS round robin
(`endpoint_mode: dnsrr`) and no published port, and the edge, published in host mode on the
node labelled for it, spreads requests over the replicas Docker's DNS names, checks each on
/health, and sends a request whose connection a stopping replica refused to another one.
A request the gateway may have acted on (the connection dropped without an answer) is
resent only when resending is harmless: a read, or a write carrying an Idempotency-Key.

The edge's port serves HTTPS only, with the gateway's certificate and key (swarm secrets),
and it calls the replicas over HTTPS too, checking their certificate against the gateway's
CA under the service's name: the hop to a replica on another node leaves the host as well."""

from __future__ import annotations

from infra.topology.catalogue import EDGE_IMAGE, EDGE_NODE
from infra.topology.model import (
    FileMount,
    Healthcheck,
    Limits,
    Port,
    Replication,
    SecretMount,
    Service,
)
from service import deployment, tls

CONFIG = "deploy/swarm/haproxy.cfg"
# HAProxy keeps this many server slots and fills them from DNS; more than a stack scales to.
SLOTS = 16
# HAProxy reads a certificate's key from `<crt>.key` beside it (ssl-load-extra-files).
CERTIFICATE = "/run/secrets/gateway.pem"
CA_FILE = f"/run/secrets/{tls.CA_SECRET}"


def edge() -> Service:
    return Service(
        name="payment-edge",
        image=EDGE_IMAGE,
        command=("haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"),
        ports=(Port(deployment.GATEWAY_PORT, deployment.GATEWAY_PORT, None),),
        healthcheck=Healthcheck(
            # Both the official image and the Debian stand-in have bash, neither curl nor wget.
            ("CMD", "bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{deployment.GATEWAY_PORT}"),
            10, 5, 3, 10
        ),
        limits=Limits(256, 0.5),
        networks=("frontend",),
        files=(FileMount(CONFIG, "/usr/local/etc/haproxy/haproxy.cfg"),),
        secrets=(SecretMount(tls.CERT_SECRET, CERTIFICATE),
                 SecretMount(tls.KEY_SECRET, f"{CERTIFICATE}.key"),
                 SecretMount(tls.CA_SECRET, CA_FILE)),
        swarm=Replication(node_label=EDGE_NODE),
    )


def haproxy_config(header: str, gateway: Service) -> str:
    """The edge's configuration for `gateway` (its name and port)."""
    port = deployment.GATEWAY_PORT
    verified = (f"ssl verify required ca-file {CA_FILE} verifyhost {tls.INTERNAL_NAME} "
                f"sni str({tls.INTERNAL_NAME})")
    return f"""# {header}
global
    log stdout format raw local0 info
    maxconn 4096
    ssl-load-extra-files key
    ssl-default-bind-options ssl-min-ver TLSv1.2
    ssl-default-bind-ciphers {tls.CIPHERS}
    ssl-default-server-options ssl-min-ver TLSv1.2

defaults
    mode http
    log global
    option httplog
    option dontlognull
    timeout connect 3s
    timeout client 60s
    timeout server 60s
    # A replica that is stopping refuses new connections: the request goes to another one
    # (redispatch at every retry). A dropped answer is retried only below, where it is safe.
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response

# Docker's embedded DNS: `tasks.<service>` names every running replica.
resolvers docker
    nameserver dns 127.0.0.11:53
    resolve_retries 3
    timeout resolve 1s
    timeout retry 1s
    hold valid 5s
    hold other 5s
    hold obsolete 5s

frontend api
    # HTTPS only: a plain HTTP request on this port gets no answer.
    bind :{port} ssl crt {CERTIFICATE} alpn http/1.1
    default_backend gateways
    # A write without an Idempotency-Key may have been done when its answer was lost:
    # never resend it (a refused connection is still retried, it never reached a gateway).
    acl safe_method method GET HEAD OPTIONS
    acl keyed req.hdr(Idempotency-Key) -m found
    http-request disable-l7-retry if !safe_method !keyed

backend gateways
    balance roundrobin
    option httpchk GET {deployment.HEALTH_PATH}
    http-check expect status 200
    default-server inter 2s fall 2 rise 2 init-addr none resolvers docker resolve-prefer ipv4
    # The replicas serve HTTPS; their certificate must chain to the CA and name the service.
    server-template gateway {SLOTS} tasks.{gateway.name}:{port} check {verified}
"""
