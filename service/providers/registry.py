"""Which adapter serves which provider, built once from Settings."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping

import httpx

from service.domain.catalog import PROVIDERS, ProviderSpec
from service.providers.contract import Adapter
from service.providers.http_adapter import HttpAdapter
from service.settings import Settings


class Registry:
    """Adapters of the electronic providers that have credentials; manual ones have none."""

    def __init__(self, adapters: Mapping[str, Adapter],
                 clients: ThreadClients | None = None) -> None:
        self._adapters = dict(adapters)
        self._clients = clients

    @classmethod
    def from_settings(cls, settings: Settings) -> Registry:
        clients = ThreadClients(settings.provider_timeout_seconds)
        adapters: dict[str, Adapter] = {}
        for spec in PROVIDERS:
            credentials = settings.credentials(spec.code)
            if spec.electronic and credentials is not None and credentials.api_url:
                adapters[spec.code] = HttpAdapter(spec.code, credentials, clients)
        return cls(adapters, clients)

    def adapter(self, code: str) -> Adapter | None:
        return self._adapters.get(code)

    def available(self, spec: ProviderSpec) -> bool:
        """Manual providers always are; electronic ones only with credentials."""
        return not spec.electronic or spec.code in self._adapters

    def close(self) -> None:
        if self._clients is not None:
            self._clients.close()


class ThreadClients:
    """An httpx.Client per thread, each keeping its connections alive. One client shared by
    the gateway's threads serialises them on its pool's lock (held while it checks every
    idle connection): under 64 concurrent creates, more than half of the threads' time was
    spent waiting for it."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        # Loading the CA store costs tens of milliseconds: once, not per thread's client
        # (anyio starts threads under load and retires idle ones).
        self._tls = httpx.create_ssl_context()
        self._local = threading.local()
        # Weak: a thread that ends (anyio retires idle ones) takes its client with it.
        self._all: weakref.WeakSet[httpx.Client] = weakref.WeakSet()
        self._lock = threading.Lock()

    def __call__(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(timeout=self._timeout, verify=self._tls)
            self._local.client = client
            with self._lock:
                self._all.add(client)
        return client

    def close(self) -> None:
        with self._lock:
            clients, self._all = list(self._all), weakref.WeakSet()
        for client in clients:
            client.close()
