"""Docker registry credentials (see master/services/registries.py): no answer holds a password."""

from __future__ import annotations

from ..services.common import page
from ..services.registries import RegistryCredentialService
from ..services.users import require_admin
from .base import BaseHandler


class RegistriesBase(BaseHandler):
    @property
    def registries(self) -> RegistryCredentialService:
        return RegistryCredentialService(self.ctx)


class RegistryCredentialsHandler(RegistriesBase):
    async def get(self) -> None:
        results = [self.registries.public(d) for d in await self.registries.list()]
        url = self.base + "/api/v0/registry-credentials/"
        self.write_json(page(results, len(results), url, {}, len(results) or 1, 0))

    async def post(self) -> None:
        require_admin(self.user)  # credentials serve every project's pulls: the admin's call
        doc = await self.registries.store(self.body())
        self.write_json(self.registries.public(doc), 201)


class RegistryCredentialHandler(RegistriesBase):
    async def delete(self, credential_id: str) -> None:
        require_admin(self.user)
        await self.registries.delete(credential_id)
        self.set_status(204)
        self.finish()
