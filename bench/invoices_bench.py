"""Invoices benchmark: N invoice PDFs (and Factur-X for the companies'), against WeasyPrint's floor.

    python bench/invoices_bench.py [--count 1000] [--company-every 3] [--cold 20]

Builds COUNT invoices (one to six lines at mixed rates; every COMPANY_EVERY-th to a company,
which also gets its Factur-X: PDF/A-3 with the EN 16931 XML, checked against the XSD), prints
them in one process and, in the same run:
- times WeasyPrint printing a bare one-paragraph page with the same fonts and stylesheet,
  the engine's own floor per document, and prints the ratio invoice / floor;
- times COLD invoices printed with the Jinja environment, the stylesheet and the font
  configuration built anew for each (what a naive renderer does), and prints what sharing them saves;
- prints invoices per second, the Factur-X overhead over the plain PDF of the same
  invoices, and the process's peak memory (ru_maxrss) with its growth from the first
  tenth of the batch to the end (a leak shows there).
Ratios, not verdicts: machines here are noisy, so compare within one run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from weasyprint import HTML

from funding.coworking.plans import vat_of
from funding.invoicing import pdf as printing
from funding.invoicing.document import DocumentKind, DocumentLine, InvoiceDocument, Party
from funding.invoicing.facturx import facturx_pdf
from funding.invoicing.pdf import document_pdf

SELLER = Party("Entre-Lab", ("12 rue de la Coutellerie", "63300 Thiers"), siren="912345675",
               vat_number="FR65912345675", is_company=True)
PRODUCTS = [("Bureau fermé", 25000, 200), ("Poste nomade, 10 jours", 12345, 200), ("Plateau repas", 1250, 100),
            ("Jus de pomme en bouteille", 290, 55), ("Revue de l'association", 800, 21), ("Café", 150, 55)]


def invoice(n: int, company: bool) -> InvoiceDocument:
    lines = []
    for i in range(1 + n % 6):
        name, unit, rate = PRODUCTS[(n + i) % len(PRODUCTS)]
        quantity = 1 + (n * 7 + i) % 5
        ht = quantity * unit
        lines.append(DocumentLine(f"{name} ({n}-{i})", quantity, unit, rate, ht, vat_of(ht, rate)))
    buyer = (Party(f"Coutellerie n° {n} SARL", ("3 place du Pirou", "63300 Thiers"), siren="552081317",
                   vat_number="FR03552081317", is_company=True)
             if company else Party(f"Membre n° {n}", (f"{n} rue Durolle", "63300 Thiers")))
    day = dt.date(2026, 1, 1) + dt.timedelta(days=n % 365)
    ht, vat = sum(item.amount_ht for item in lines), sum(item.vat_amount for item in lines)
    return InvoiceDocument(kind=DocumentKind.INVOICE, number=f"F-2026-{n:05d}", issue_date=day, service_date=day,
                           due_date=day + dt.timedelta(days=30), currency="EUR", seller=SELLER, buyer=buyer,
                           lines=tuple(lines), total_ht=ht, total_vat=vat, total_ttc=ht + vat,
                           payment_terms="À 30 jours, par virement ou carte", late_penalty="trois fois le taux d'intérêt légal")


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def floor(count: int) -> float:
    started = time.perf_counter()
    for n in range(count):
        HTML(string=f"<p>Facture n° {n}</p>").write_pdf(stylesheets=[printing.stylesheet()], font_config=printing.fonts())
    return (time.perf_counter() - started) / count


def cold(docs: list[InvoiceDocument]) -> float:
    started = time.perf_counter()
    for doc in docs:
        for cached in (printing.environment, printing.stylesheet, printing.fonts):
            cached.cache_clear()
        document_pdf(doc)
    return (time.perf_counter() - started) / len(docs)


def main(args: argparse.Namespace) -> None:
    docs = [invoice(n, company=n % args.company_every == 0) for n in range(args.count)]
    companies = [doc for doc in docs if doc.buyer.is_company]
    document_pdf(docs[0])  # fonts found, stylesheet parsed: what a long-running worker has done once
    floor_time = floor(50)
    print(f"floor:   a one-paragraph page, {1 / floor_time:,.1f} PDFs/s ({floor_time * 1000:.1f} ms each)", flush=True)

    started, tenth_rss, size = time.perf_counter(), 0.0, 0
    for n, doc in enumerate(docs, 1):
        size += len(document_pdf(doc))
        if n == max(1, args.count // 10):
            tenth_rss = rss_mb()
    pdf_time = time.perf_counter() - started
    per_pdf = pdf_time / args.count
    print(f"pdf:     {args.count:,} invoices in {pdf_time:.1f} s, {args.count / pdf_time:,.1f} invoices/s "
          f"({per_pdf * 1000:.1f} ms each, {size / args.count / 1024:.0f} KiB), invoice / floor = {per_pdf / floor_time:.2f}×")

    started = time.perf_counter()
    for doc in companies:
        facturx_pdf(doc)
    fx_time = time.perf_counter() - started
    print(f"facturx: {len(companies):,} company invoices in {fx_time:.1f} s, {len(companies) / fx_time:,.1f}/s, "
          f"Factur-X / plain PDF = {fx_time / len(companies) / per_pdf:.2f}×")
    print(f"batch:   {args.count:,} PDFs + {len(companies):,} Factur-X in {pdf_time + fx_time:.1f} s "
          f"({args.count / (pdf_time + fx_time):,.1f} invoices/s)")
    print(f"memory:  peak RSS {rss_mb():.0f} MB (after the first tenth {tenth_rss:.0f} MB)")

    cold_time = cold(docs[: args.cold])
    print(f"cold:    environment, stylesheet and fonts built per invoice: {cold_time * 1000:.1f} ms each, "
          f"cold / shared = {cold_time / per_pdf:.2f}×")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--company-every", type=int, default=3)
    parser.add_argument("--cold", type=int, default=20)
    main(parser.parse_args())
