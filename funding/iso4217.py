"""The currencies money may be entered in: ISO 4217 List One, the active codes, with their minor
units (the digits after the decimal point) as the standard states them.

Shipped as data rather than read from Babel: Babel's CLDR data holds historic codes too
(``FRF``, ``VEF``…, 300 and more), answers 2 decimals for a code it does not know (``ABC``),
and states CLDR's *usage* digits where they differ from the standard (0 for ``HUF``, ``COP``,
``IDR``…, where ISO 4217 and Stripe count 2). Codes whose minor unit is "N.A." in the standard
(precious metals, ``XDR``, the testing code ``XTS``, "no currency" ``XXX``) are no money here.
``BGN`` left the list with Bulgaria's move to the euro (2026-01-01).

Source: ISO 4217 List One as published by SIX (amendments up to 2025, ``XCG`` and ``ZWG``
included). To update: edit the table, keep it sorted within each line.
"""

from __future__ import annotations

_BY_DIGITS = {
    0: "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF",
    2: "AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BMD BND BOB BOV BRL BSD BTN BWP BYN BZD CAD CDF CHE CHF "
       "CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG "
       "HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR "
       "MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD "
       "SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG "
       "YER ZAR ZMW ZWG",
    3: "BHD IQD JOD KWD LYD OMR TND",
    4: "CLF UYW",
}

MINOR_UNITS: dict[str, int] = {code: digits for digits, codes in _BY_DIGITS.items() for code in codes.split()}
"""Every active ISO 4217 code → its minor units."""
