"""Which adapter serves which provider, built once from Settings."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from service.domain.catalog import PROVIDERS, ProviderSpec
from service.providers.contract import Adapter
from service.providers.http_adapter import HttpAdapter
from service.settings import Settings


class Registry:
    """Adapters of the electronic providers that have credentials; manual ones have none."""

    def __init__(self, adapters: Mapping[str, Adapter], client: httpx.Client | None = None) -> None:
        self._adapters = dict(adapters)
        self._client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> Registry:
        client = httpx.Client(timeout=settings.provider_timeout_seconds)
        adapters: dict[str, Adapter] = {}
        for spec in PROVIDERS:
            credentials = settings.credentials(spec.code)
            if spec.electronic and credentials is not None and credentials.api_url:
                adapters[spec.code] = HttpAdapter(spec.code, credentials, client)
        return cls(adapters, client)

    def adapter(self, code: str) -> Adapter | None:
        return self._adapters.get(code)

    def available(self, spec: ProviderSpec) -> bool:
        """Manual providers always are; electronic ones only with credentials."""
        return not spec.electronic or spec.code in self._adapters

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
