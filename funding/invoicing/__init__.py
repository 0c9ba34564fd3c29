"""Invoices and credit notes as documents: checked data (document), the PDF with every legal
mention (pdf) and its Factur-X form, PDF/A-3 with the EN 16931 XML inside (facturx). Nothing
here reads the database or Stripe."""
