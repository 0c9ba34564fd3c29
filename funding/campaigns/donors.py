"""Who gives, as a tax receipt must name them: a postal address, and the company if one gives.

A gift that calls for a receipt (an organisation of general interest, a gift part above zero)
needs the donor's postal address: street, postcode, town, country. A company giving (a
checkbox, its name and SIREN) gets the receipt for companies (cerfa 16216, article 238 bis);
a person the one for individuals (cerfa 11580, article 200). Both forms — /soutenir and a
campaign's contribution form — read what was typed here, and refuse it whole, in French.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from funding.errors import FundingError
from funding.i18n import gettext as _
from funding.orgs.service import luhn_ok

FRANCE = "France"


class DonorError(FundingError):
    """What the donor typed cannot go on a tax receipt; the message says what to fix."""


@dataclass(frozen=True)
class DonorDetails:
    """What a donor typed for their receipt, as typed."""

    street: str = ""
    postcode: str = ""
    town: str = ""
    country: str = ""
    company: bool = False
    company_name: str = ""
    siren: str = ""

    @classmethod
    def from_form(cls, form) -> DonorDetails:
        def text(key: str) -> str:
            return str(form.get(key, "") or "")

        return cls(street=text("street"), postcode=text("postcode"), town=text("town"), country=text("country"),
                   company=text("company") in ("1", "on", "true"), company_name=text("company_name"),
                   siren=text("siren"))

    def typed(self) -> bool:
        return any(v.strip() for v in (self.street, self.postcode, self.town, self.company_name, self.siren)) or self.company


@dataclass(frozen=True)
class Donor:
    """A checked donor: the address as the receipt prints it, the company if one gives."""

    address: str
    company_name: str | None = None
    siren: str | None = None


def _clean(value: str) -> str:
    return " ".join((value or "").split())


def check_donor(details: DonorDetails, *, required: bool) -> Donor | None:
    """The donor for the receipt, or None when no receipt is due and nothing was typed.
    DonorError (French) when a receipt is due and the address is missing or wrong."""
    if not required and not details.typed():
        return None
    street, postcode, town = _clean(details.street), _clean(details.postcode).upper(), _clean(details.town)
    country = _clean(details.country) or FRANCE
    if not street or not postcode or not town:
        raise DonorError(_("Indiquez votre adresse postale complète (rue, code postal, ville) : "
                           "elle figure sur le reçu fiscal de votre don."))
    if len(street) > 200 or len(town) > 100 or len(country) > 60:
        raise DonorError(_("L'adresse est trop longue (rue : 200 caractères, ville : 100, pays : 60 au plus)."))
    if country.casefold() in ("france", "fr"):
        country = FRANCE
        if not re.fullmatch(r"\d{5}", postcode):
            raise DonorError(_("Code postal invalide : %(value)s (5 chiffres en France).", value=postcode))
    elif not re.fullmatch(r"[0-9A-Z][0-9A-Z \-]{1,11}", postcode):
        raise DonorError(_("Code postal invalide : %(value)s.", value=postcode))
    address = f"{street}\n{postcode} {town}\n{country}"
    if not details.company:
        return Donor(address)
    name = _clean(details.company_name)
    if not name:
        raise DonorError(_("Indiquez le nom de l'entreprise qui donne : le reçu est établi à son nom."))
    if len(name) > 200:
        raise DonorError(_("Le nom de l'entreprise est trop long (200 caractères au plus)."))
    siren = re.sub(r"\s", "", details.siren or "")
    if not re.fullmatch(r"\d{9}", siren) or not luhn_ok(siren):
        raise DonorError(_("SIREN invalide : %(value)s (9 chiffres, par exemple 732 829 320).",
                           value=details.siren.strip() or _("(vide)")))
    return Donor(address, name, siren)
