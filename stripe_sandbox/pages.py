"""HTML building blocks for the hosted pages: French, accessible, phone-friendly, no JavaScript."""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any

from starlette.responses import HTMLResponse

from stripe_sandbox.money import format_amount

MONTHS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"]
BANNER = "Bac à sable Stripe — aucun paiement réel"

CSS = """
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f6f8fa;color:#1a1f36;line-height:1.5}
.banner{background:#ffd24d;color:#1a1f36;text-align:center;font-weight:700;padding:.5rem 1rem;border-bottom:2px solid #b38600}
main{max-width:34rem;margin:0 auto;padding:1.25rem 1rem 3rem}
h1{font-size:1.4rem;margin:.5rem 0 1rem}
h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
.card{background:#fff;border:1px solid #d8dee4;border-radius:.5rem;padding:1rem;margin:0 0 1rem}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input{width:100%;font-size:1.05rem;padding:.6rem .7rem;border:1px solid #8792a2;border-radius:.375rem;background:#fff}
input:focus,button:focus,a:focus{outline:3px solid #635bff;outline-offset:2px}
input[aria-invalid=true]{border-color:#c0123c}
.row{display:flex;gap:.75rem}.row>div{flex:1}
.hint{color:#57606a;font-size:.9rem;margin:.15rem 0 0}
.field-error{color:#c0123c;font-size:.95rem;margin:.25rem 0 0}
.alert{border:2px solid #c0123c;background:#fff0f3;color:#8a0b2a;border-radius:.375rem;padding:.75rem;margin:0 0 1rem}
.ok{border:2px solid #1a7f37;background:#effcf1;color:#0f5323;border-radius:.375rem;padding:.75rem;margin:0 0 1rem}
button{display:block;width:100%;font-size:1.1rem;font-weight:700;padding:.8rem;margin:1.25rem 0 0;
border:0;border-radius:.375rem;background:#635bff;color:#fff;cursor:pointer}
button.secondary{background:#fff;color:#c0123c;border:2px solid #c0123c}
button.inline{display:inline-block;width:auto;font-size:.95rem;padding:.45rem .8rem;margin:.5rem 0 0}
table{width:100%;border-collapse:collapse}th,td{text-align:left;padding:.4rem .25rem;border-bottom:1px solid #eaeef2;vertical-align:top}
td.num,th.num{text-align:right;white-space:nowrap}
.total{font-weight:700;font-size:1.1rem}
a{color:#4b45c6}
.muted{color:#57606a}
"""


def page(title: str, body: str, *, status: int = 200) -> HTMLResponse:
    html = f"""<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{escape(title)} — {escape(BANNER)}</title>
<style>{CSS}</style>
</head>
<body>
<div class="banner" role="note">{escape(BANNER)}</div>
<main>
<h1>{escape(title)}</h1>
{body}
</main>
</body>
</html>"""
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def date_fr(ts: int | None) -> str:
    if not ts:
        return "—"
    day = dt.datetime.fromtimestamp(ts, dt.UTC)
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def money(amount: int, currency: str) -> str:
    return escape(format_amount(amount, currency))


def alert(message: str | None) -> str:
    return f'<div class="alert" role="alert" id="error">{escape(message)}</div>' if message else ""


def _input(
    name: str,
    label: str,
    errors: dict[str, str],
    values: dict[str, str],
    *,
    kind: str = "text",
    autocomplete: str = "",
    inputmode: str = "",
    hint: str = "",
    placeholder: str = "",
) -> str:
    error = errors.get(name)
    described = []
    hint_html = ""
    if hint:
        hint_html = f'<p class="hint" id="{name}-hint">{escape(hint)}</p>'
        described.append(f"{name}-hint")
    error_html = ""
    if error:
        error_html = f'<p class="field-error" id="{name}-error">{escape(error)}</p>'
        described.append(f"{name}-error")
    attrs = [f'type="{kind}"', f'id="{name}"', f'name="{name}"', f'value="{escape(values.get(name, ""))}"', "required"]
    if autocomplete:
        attrs.append(f'autocomplete="{autocomplete}"')
    if inputmode:
        attrs.append(f'inputmode="{inputmode}"')
    if placeholder:
        attrs.append(f'placeholder="{escape(placeholder)}"')
    if described:
        attrs.append(f'aria-describedby="{" ".join(described)}"')
    if error:
        attrs.append('aria-invalid="true"')
    return f'<label for="{name}">{escape(label)}</label><input {" ".join(attrs)}>{hint_html}{error_html}'


def card_fields(errors: dict[str, str], values: dict[str, str], *, ask_email: bool) -> str:
    parts = []
    if ask_email:
        parts.append(_input("email", "Adresse e-mail", errors, values, kind="email", autocomplete="email"))
    parts.append(_input("cardholder-name", "Nom du titulaire de la carte", errors, values, autocomplete="cc-name"))
    parts.append(_input(
        "card-number", "Numéro de carte", errors, values,
        autocomplete="cc-number", inputmode="numeric", hint="Carte de test : 4242 4242 4242 4242", placeholder="1234 1234 1234 1234",
    ))
    parts.append('<div class="row"><div>')
    parts.append(_input("card-expiry", "Date d'expiration (MM/AA)", errors, values, autocomplete="cc-exp", inputmode="numeric", placeholder="MM/AA"))
    parts.append("</div><div>")
    parts.append(_input("card-cvc", "Code de sécurité (CVC)", errors, values, autocomplete="cc-csc", inputmode="numeric", placeholder="123"))
    parts.append("</div></div>")
    return "".join(parts)


def sepa_fields(errors: dict[str, str], values: dict[str, str], *, ask_email: bool) -> str:
    """The SEPA Direct Debit inputs: the account holder's name, their email (Stripe requires both), the IBAN."""
    parts = []
    if ask_email:
        parts.append(_input("sepa-email", "Adresse e-mail", errors, values, kind="email", autocomplete="email"))
    parts.append(_input("account-holder-name", "Nom du titulaire du compte", errors, values, autocomplete="name"))
    parts.append(_input("iban", "IBAN", errors, values, hint="IBAN de test : FR14 2004 1010 0505 0001 3M02 606",
                        placeholder="FR76 0000 0000 0000 0000 0000 000"))
    return "".join(parts)


def lines_table(rows: list[tuple[str, str]], total: tuple[str, str] | None) -> str:
    body = "".join(f"<tr><td>{escape(label)}</td><td class='num'>{value}</td></tr>" for label, value in rows)
    if total:
        body += f"<tr class='total'><td>{escape(total[0])}</td><td class='num'>{total[1]}</td></tr>"
    return f"<table><thead><tr><th scope='col'>Article</th><th scope='col' class='num'>Montant</th></tr></thead><tbody>{body}</tbody></table>"


def link(url: str | None, text: str, ident: str = "") -> str:
    if not url:
        return ""
    id_attr = f' id="{ident}"' if ident else ""
    return f'<p><a href="{escape(url)}"{id_attr}>{escape(text)}</a></p>'


def minimal_pdf(lines: list[str]) -> bytes:
    """A one-page PDF with lines of text (Helvetica, WinAnsi), enough for an invoice_pdf link."""

    def pdf_text(text: str) -> str:
        raw = text.encode("cp1252", "replace").decode("latin-1")
        return raw.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    stream_lines = ["BT", "/F1 11 Tf", "14 TL", "50 790 Td"]
    for line in lines:
        stream_lines.append(f"({pdf_text(line)}) Tj T*")
    stream_lines.append("ET")
    stream = "\n".join(stream_lines).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def describe_card(pm: dict[str, Any] | None) -> str:
    if not pm:
        return "Aucune carte enregistrée"
    if pm.get("type") == "sepa_debit":
        account = pm["sepa_debit"]
        return f"Prélèvement SEPA — compte se terminant par {account['last4']} (banque {account['bank_code']})"
    card = pm["card"]
    return f"{card['brand'].capitalize()} se terminant par {card['last4']} (exp. {card['exp_month']:02d}/{card['exp_year'] % 100:02d})"
