"""Amounts in French words, as a tax receipt states them ("cent vingt euros et cinquante centimes").

Traditional spelling: "vingt et un", "soixante et onze", "quatre-vingts", "deux cents",
"deux cent un", "mille", "deux millions".
"""

from __future__ import annotations

from funding.money import exponent

UNITS = ("zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix", "onze", "douze",
         "treize", "quatorze", "quinze", "seize", "dix-sept", "dix-huit", "dix-neuf")
TENS = {2: "vingt", 3: "trente", 4: "quarante", 5: "cinquante", 6: "soixante"}
CURRENCY_WORDS = {"EUR": ("euro", "euros", "centime", "centimes")}


def _below_100(n: int) -> str:
    if n < 20:
        return UNITS[n]
    tens, unit = divmod(n, 10)
    if tens in (7, 9):  # soixante-dix…, quatre-vingt-dix…
        base = "soixante" if tens == 7 else "quatre-vingt"
        if tens == 7 and unit == 1:
            return "soixante et onze"
        return f"{base}-{UNITS[10 + unit]}"
    if tens == 8:
        return "quatre-vingts" if unit == 0 else f"quatre-vingt-{UNITS[unit]}"
    word = TENS[tens]
    if unit == 0:
        return word
    if unit == 1:
        return f"{word} et un"
    return f"{word}-{UNITS[unit]}"


def _below_1000(n: int, *, final: bool) -> str:
    hundreds, rest = divmod(n, 100)
    parts = []
    if hundreds:
        if hundreds == 1:
            parts.append("cent")
        else:
            # "deux cents" takes an s only when nothing follows (not even "mille").
            parts.append(f"{UNITS[hundreds]} cent" + ("s" if rest == 0 and final else ""))
    if rest:
        word = _below_100(rest)
        if rest == 80 and not final:
            word = "quatre-vingt"
        parts.append(word)
    return " ".join(parts)


def integer_words(n: int) -> str:
    if n < 0:
        return "moins " + integer_words(-n)
    if n == 0:
        return "zéro"
    parts = []
    for value, singular, plural in ((10**9, "milliard", "milliards"), (10**6, "million", "millions")):
        count, n = divmod(n, value)
        if count:
            parts.append(f"{integer_words(count)} {singular if count == 1 else plural}")
    thousands, n = divmod(n, 1000)
    if thousands:
        parts.append("mille" if thousands == 1 else f"{_below_1000(thousands, final=False)} mille")
    if n:
        parts.append(_below_1000(n, final=True))
    return " ".join(parts)


def amount_in_words(amount: int, currency: str = "EUR") -> str:
    """``12050, "EUR"`` → ``cent vingt euros et cinquante centimes``."""
    exp = exponent(currency)
    units, minor = divmod(abs(int(amount)), 10**exp) if exp else (abs(int(amount)), 0)
    one, many, minor_one, minor_many = CURRENCY_WORDS.get(currency.upper(), (currency.upper(),) * 2 + ("",) * 2)
    # "un million d'euros", "deux millions d'euros"
    unit_word = many if units != 1 else one
    words = integer_words(units)
    text = f"{words} d'{unit_word}" if units and units % 10**6 == 0 else f"{words} {unit_word}"
    if minor:
        minor_word = (minor_many if minor != 1 else minor_one) or f"/ 10^{exp}"
        text += f" et {integer_words(minor)} {minor_word}"
    return ("moins " if amount < 0 else "") + text
