"""A benchmark corpus of realistic PDFs, made here, the same bytes on every run.

    tests/.venv/bin/python tests/bench/corpus.py --out DIR [--bin target/release]

Writes into DIR the kinds of file a stamper meets, each checked as it is made:

  letter-scan.pdf    a scanned 3-page letter: one full-page JPEG per A4 page (170 dpi,
                     drawn text, paper noise and shading, so it compresses like a scan)
  report-fonts.pdf   an exported ~30-page report: embedded TrueType subsets (the Vera
                     faces bundled in reportlab), headings, tables, an outline, an info
                     dictionary, a classic cross-reference table
  form.pdf           an AcroForm: text fields, a checkbox, radio buttons, a combo and a list
  signed.pdf         a 2-page contract already signed (PAdES, pyHanko, P-256 test key) in
                     a visible field on its last page; validated with pyHanko
  objstm.pdf         report-fonts.pdf rewritten by `qpdf --object-streams=generate`
                     (object streams, a cross-reference stream); checked with --show-xref
  updates.pdf        a memo with 4 incremental updates by pyHanko (info, a note
                     annotation, an empty signature field, a text stamp)
  synthetic-*.pdf    `meterai-sample-pdf` 1, 50 and 500 pages, and 1 page padded
                     (`--pad-to`) to the bytes of the 500-page one

and DIR/corpus.json: one entry per file, {file, kind, description, pages, bytes, page, x,
y, signed_before, sha256, checked}, where page (1-based, the last) and x, y (lower left,
points: page width - 145, 40) place a 100 x 100 pt mark inside that page, and checked says
how the file was checked. Every file must pass `qpdf --check`; any failed check stops the
script with an error. Prints one line per file: name, bytes, pages, checks.

Reproducible: fixed seeds, reportlab's invariant mode, fonts only from reportlab's own
package, no network. pyHanko writes the clock, random IDs and uuid4 names and signs
ECDSA with a random nonce; while it writes here those are fixed (a frozen clock, seeded
bytes, RFC 6979 deterministic ECDSA), so its files repeat too.
"""

import argparse
import contextlib
import datetime as dt
import functools
import hashlib
import io
import json
import os
import pathlib
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import reportlab
import reportlab.rl_config

reportlab.rl_config.invariant = 1  # fixed dates and /ID: the same bytes every run

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont  # noqa: E402
from reportlab.lib import colors  # noqa: E402
from reportlab.lib.enums import TA_JUSTIFY  # noqa: E402
from reportlab.lib.pagesizes import A4  # noqa: E402
from reportlab.lib.styles import ParagraphStyle  # noqa: E402
from reportlab.lib.units import mm  # noqa: E402
from reportlab.lib.utils import ImageReader, simpleSplit  # noqa: E402
from reportlab.pdfbase import pdfmetrics  # noqa: E402
from reportlab.pdfbase.ttfonts import TTFont  # noqa: E402
from reportlab.pdfgen import canvas  # noqa: E402
from reportlab.platypus import (  # noqa: E402
    PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
SIGNING = ROOT / "functions" / "lib" / "pdf" / "testdata" / "signing"
FONTS = pathlib.Path(reportlab.__file__).parent / "fonts"
MARK = 100  # the mark is 100 x 100 pt
# pyHanko's clock while it writes here: after the test certificates' notBefore.
FROZEN_TIME = dt.datetime(2026, 12, 1, 9, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))

WORDS = (
    "perjanjian pihak pertama kedua pembayaran sesuai dengan ketentuan yang berlaku dan "
    "akan dilaksanakan dalam waktu hari kerja setelah dokumen ditandatangani oleh para "
    "kontrak nilai rupiah jasa barang pengiriman tanggal sebagaimana dimaksud pasal ayat "
    "berikut ini kami sampaikan bahwa telah menerima surat permohonan atas perhatian "
    "kerja sama laporan keuangan tahun anggaran realisasi rencana kegiatan pelaksanaan "
    "pengadaan penyedia wajib menyerahkan jaminan pelaksanaan sebelum serah terima "
    "pekerjaan pemeriksaan hasil dinyatakan lengkap benar apabila terdapat perbedaan "
    "maka penyelesaian dilakukan secara musyawarah untuk mencapai mufakat"
).split()


def sentence(rng, lo=8, hi=22):
    words = [rng.choice(WORDS) for _ in range(rng.randint(lo, hi))]
    if rng.random() < 0.3:
        words.insert(rng.randrange(len(words)), f"Rp{rng.randint(1, 999)}.{rng.randint(0, 999):03d}.000")
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


def paragraph(rng, lo=3, hi=7):
    return " ".join(sentence(rng) for _ in range(rng.randint(lo, hi)))


def register_fonts():
    for name in ("Vera", "VeraBd", "VeraIt", "VeraBI"):
        if name not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(name, str(FONTS / f"{name}.ttf")))
    pdfmetrics.registerFontFamily("Vera", normal="Vera", bold="VeraBd", italic="VeraIt", boldItalic="VeraBI")


# --- 1. a scanned letter -------------------------------------------------------------

def scan_page(rng, number, dpi=170):
    """One A4 page as a scanner makes it: text, a slight skew, shading, noise. RGB."""
    w, h = round(210 / 25.4 * dpi), round(297 / 25.4 * dpi)
    px = dpi / 72  # pixels per point
    ink = Image.new("L", (w, h), 255)
    draw = ImageDraw.Draw(ink)
    body = ImageFont.truetype(str(FONTS / "Vera.ttf"), round(10.5 * px))
    bold = ImageFont.truetype(str(FONTS / "VeraBd.ttf"), round(14 * px))
    margin, y = round(72 * px), round(60 * px)
    line = round(15 * px)
    right = w - margin
    if number == 1:
        draw.text((margin, y), "PT SUMBER MAKMUR SENTOSA", font=bold, fill=30)
        y += round(20 * px)
        draw.text((margin, y), "Jl. Jenderal Sudirman No. 45, Jakarta 10220 - Telp. (021) 555-0142",
                  font=body, fill=60)
        y += line
        draw.line((margin, y, right, y), fill=40, width=max(2, round(px)))
        y += 2 * line
        for text in ("Nomor   : 045/SMS/XII/2026", "Lampiran: 2 (dua) berkas",
                     "Perihal : Penawaran kerja sama pengadaan", "",
                     "Kepada Yth.", "Direktur Utama PT Nusantara Jaya", "di Jakarta", ""):
            draw.text((margin, y), text, font=body, fill=35)
            y += line
    else:
        y += 2 * line
    bottom = h - round(90 * px)
    while y < bottom - 6 * line:
        words = paragraph(rng, 2, 5).split()
        current = ""
        for word in words:
            trial = f"{current} {word}".strip()
            if draw.textlength(trial, font=body) > right - margin:
                draw.text((margin, y), current, font=body, fill=rng.randint(25, 50))
                y += line
                current = word
            else:
                current = trial
        draw.text((margin, y), current, font=body, fill=rng.randint(25, 50))
        y += round(line * 1.7)
    if number == 3:
        draw.text((margin, y), "Hormat kami,", font=body, fill=35)
        # a pen signature: a random walk
        sx, sy = margin + round(20 * px), y + round(20 * px)
        points = [(sx, sy)]
        for _ in range(40):
            sx += rng.randint(2, 9)
            sy = min(max(sy + rng.randint(-12, 12), y + round(5 * px)), y + round(45 * px))
            points.append((sx, sy))
        draw.line(points, fill=20, width=3)
        draw.text((margin, y + round(55 * px)), "Budi Santoso, Direktur", font=body, fill=35)
    draw.text((w // 2 - round(20 * px), h - round(40 * px)), f"- {number} -", font=body, fill=60)
    ink = ink.filter(ImageFilter.GaussianBlur(0.7)).rotate(
        rng.uniform(-0.4, 0.4), resample=Image.BICUBIC, fillcolor=255)
    # paper: uneven lamp shading (a tiny random field, smoothly enlarged) and grain
    shade = Image.frombytes("L", (6, 8), bytes(rng.randint(226, 242) for _ in range(48)))
    shade = shade.resize((w, h), Image.BICUBIC)
    normal = statistics.NormalDist(0, 7)
    grain_lut = [max(0, min(255, round(128 + normal.inv_cdf((i + 0.5) / 256)))) for i in range(256)]
    grain = Image.frombytes("L", (w, h), rng.randbytes(w * h)).point(grain_lut)
    paper = ImageChops.add(shade, grain, offset=-128)
    grey = ImageChops.multiply(paper, ink)
    # a slightly warm paper, as colour scanners see it
    rgb = Image.merge("RGB", (grey, grey.point(lambda v: round(v * 0.985)), grey.point(lambda v: round(v * 0.94))))
    if number == 3:  # the company's round stamp in purple ink over the signature
        chop = ImageDraw.Draw(rgb)
        cx, cy, r = margin + round(150 * px), y + round(25 * px), round(38 * px)
        for k in range(3):
            chop.ellipse((cx - r + k, cy - r + k, cx + r - k, cy + r - k), outline=(120, 70, 150))
        chop.text((cx - round(30 * px), cy - round(6 * px)), "SMS JAKARTA", font=body, fill=(120, 70, 150))
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=72, dpi=(dpi, dpi))
    return out.getvalue()


def make_letter_scan(path, rng):
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    c.setTitle("Surat penawaran (scan)")
    c.setCreator("Scanner ADF 170 dpi")
    for number in (1, 2, 3):
        # a JPEG goes in as it is (DCTDecode), not re-encoded
        c.drawImage(ImageReader(io.BytesIO(scan_page(rng, number))), 0, 0, width=A4[0], height=A4[1])
        c.showPage()
    c.save()


# --- 2. an exported report with embedded fonts ---------------------------------------

class ReportTemplate(SimpleDocTemplate):
    """Adds each heading to the outline, as a word processor's export does."""

    def afterFlowable(self, flowable):
        if isinstance(flowable, Paragraph) and flowable.style.name in ("H1", "H2"):
            level = 0 if flowable.style.name == "H1" else 1
            key = f"h{self.outline_count}"
            self.outline_count += 1
            self.canv.bookmarkPage(key)
            self.canv.addOutlineEntry(flowable.getPlainText(), key, level=level, closed=level == 0)


def report_story(rng, chapters):
    body = ParagraphStyle("Body", fontName="Vera", fontSize=10.5, leading=14.5, alignment=TA_JUSTIFY, spaceAfter=7)
    h1 = ParagraphStyle("H1", fontName="VeraBd", fontSize=17, leading=22, spaceBefore=6, spaceAfter=12)
    h2 = ParagraphStyle("H2", fontName="VeraBd", fontSize=12.5, leading=16, spaceBefore=10, spaceAfter=6)
    cell = ParagraphStyle("Cell", fontName="Vera", fontSize=8.5, leading=10.5)
    title = ParagraphStyle("Title", fontName="VeraBd", fontSize=24, leading=30, spaceAfter=18)
    story = [
        Spacer(1, 120),
        Paragraph("Laporan Pelaksanaan Kegiatan Tahun Anggaran 2026", title),
        Paragraph("<i>Disusun oleh Bagian Perencanaan dan Keuangan</i>", body),
        Paragraph(paragraph(rng, 4, 6), body),
        PageBreak(),
    ]
    for ch in range(1, chapters + 1):
        story.append(Paragraph(f"Bab {ch}. {sentence(rng, 3, 5)[:-1].title()}", h1))
        for sec in range(1, 5):
            story.append(Paragraph(f"{ch}.{sec} {sentence(rng, 2, 5)[:-1].capitalize()}", h2))
            for _ in range(rng.randint(2, 4)):
                text = paragraph(rng)
                words = text.split(" ")
                i = rng.randrange(len(words))
                words[i] = f"<b>{words[i]}</b>"  # bold and italic runs: every face is used
                j = rng.randrange(len(words))
                words[j] = f"<i>{words[j]}</i>"
                story.append(Paragraph(" ".join(words), body))
            if sec == 2:
                rows = [["No", "Uraian", "Volume", "Harga satuan (Rp)", "Jumlah (Rp)"]]
                total = 0
                for n in range(1, rng.randint(6, 11)):
                    qty, price = rng.randint(1, 400), rng.randint(5, 900) * 1000
                    total += qty * price
                    rows.append([str(n), Paragraph(sentence(rng, 3, 7), cell),
                                 f"{qty:,}", f"{price:,}", f"{qty * price:,}"])
                rows.append(["", "Jumlah", "", "", f"{total:,}"])
                table = Table(rows, colWidths=[24, 210, 50, 90, 90], repeatRows=1)
                table.setStyle(TableStyle([
                    ("FONT", (0, 0), (-1, 0), "VeraBd", 8.5),
                    ("FONT", (0, 1), (-1, -1), "Vera", 8.5),
                    ("FONT", (0, -1), (-1, -1), "VeraBd", 8.5),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde4ee")),
                    ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                    ("ALIGN", (2, 1), (-1, -1), "RIGHT"),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]))
                story += [Spacer(1, 4), table, Spacer(1, 10)]
    return story


def report_footer(c, doc):
    c.saveState()
    c.setFont("VeraIt", 8)
    c.drawString(20 * mm, 12 * mm, "Laporan Pelaksanaan Kegiatan 2026")
    c.drawRightString(A4[0] - 20 * mm, 12 * mm, f"Halaman {doc.page}")
    c.restoreState()


def make_report(path, rng):
    register_fonts()
    doc = ReportTemplate(
        str(path), pagesize=A4, invariant=1,
        leftMargin=25 * mm, rightMargin=25 * mm, topMargin=25 * mm, bottomMargin=22 * mm,
        title="Laporan Pelaksanaan Kegiatan Tahun Anggaran 2026",
        author="Bagian Perencanaan dan Keuangan", subject="Laporan tahunan",
        creator="Writer (PDF export)", keywords="laporan, anggaran, 2026",
    )
    doc.outline_count = 0
    doc.build(report_story(rng, chapters=9), onFirstPage=report_footer, onLaterPages=report_footer)


# --- 3. a form -----------------------------------------------------------------------

def make_form(path):
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    c.setTitle("Formulir permohonan")
    c.setAuthor("Dinas Pelayanan Terpadu")
    form = c.acroForm
    c.setFont("Helvetica-Bold", 16)
    c.drawString(60, 780, "Formulir Permohonan Layanan")
    c.setFont("Helvetica", 10)
    y = 730
    for label, name, value in (
        ("Nama lengkap", "nama", "Siti Rahmawati"),
        ("NIK", "nik", "3174 0123 4567 0001"),
        ("Alamat", "alamat", "Jl. Melati No. 7, Bandung"),
        ("Nomor telepon", "telepon", ""),
        ("Tanggal", "tanggal", "01/12/2026"),
    ):
        c.drawString(60, y + 6, label)
        form.textfield(name=name, tooltip=label, value=value, x=180, y=y, width=300, height=20,
                       borderStyle="inset", forceBorder=True, fontName="Helvetica", fontSize=10)
        y -= 36
    c.drawString(60, y + 6, "Jenis dokumen")
    form.choice(name="jenis", tooltip="Jenis dokumen", value="Surat perjanjian",
                options=["Surat perjanjian", "Surat pernyataan", "Kuitansi", "Akta"],
                x=180, y=y, width=200, height=20, fieldFlags="combo", fontName="Helvetica", fontSize=10)
    y -= 70
    c.drawString(60, y + 40, "Keperluan")
    form.listbox(name="keperluan", tooltip="Keperluan", value="Pribadi",
                 options=["Pribadi", "Perusahaan", "Instansi", "Lainnya"],
                 x=180, y=y, width=200, height=56, fontName="Helvetica", fontSize=10)
    y -= 40
    c.drawString(60, y + 4, "Pengiriman")
    for i, option in enumerate(("Email", "Pos", "Ambil sendiri")):
        form.radio(name="pengiriman", tooltip=option, value=option.lower().replace(" ", "_"),
                   selected=i == 0, x=180 + i * 110, y=y, size=14, buttonStyle="circle")
        c.drawString(198 + i * 110, y + 3, option)
    y -= 40
    form.checkbox(name="setuju", tooltip="Persetujuan", x=60, y=y, size=14, checked=True, buttonStyle="check")
    c.drawString(82, y + 3, "Saya menyatakan data di atas benar.")
    c.showPage()
    c.setFont("Helvetica", 10)
    c.drawString(60, 780, "Halaman 2 - tanda tangan pemohon dan petugas")
    form.textfield(name="catatan", tooltip="Catatan petugas", value="", x=60, y=600, width=470, height=120,
                   fieldFlags="multiline", fontName="Helvetica", fontSize=10)
    c.showPage()
    c.save()


# --- pyHanko, reproducibly -----------------------------------------------------------

class _FrozenDatetime(dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return FROZEN_TIME


@contextlib.contextmanager
def reproducible_pyhanko(seed):
    """While pyHanko writes: a frozen clock, seeded random bytes and uuid4, RFC 6979 ECDSA."""
    from cryptography.hazmat.primitives.asymmetric import ec
    # every module that reads the clock, imported now (some pyHanko imports lazily)
    import pyhanko.pdf_utils.metadata.info  # noqa: F401
    import pyhanko.pdf_utils.metadata.xmp_xml  # noqa: F401
    import pyhanko.sign.signers.pdf_signer  # noqa: F401
    import pyhanko.stamp  # noqa: F401
    from pyhanko.sign.signers import pdf_cms

    rng = random.Random(seed)
    patches = [(os, "urandom", rng.randbytes),
               (uuid, "uuid4", lambda: uuid.UUID(int=rng.getrandbits(128), version=4)),
               (pdf_cms, "ECDSA", functools.partial(ec.ECDSA, deterministic_signing=True))]
    for name, module in list(sys.modules.items()):
        pyhanko_module = name.split(".")[0] in ("pyhanko", "pyhanko_certvalidator")
        if pyhanko_module and getattr(module, "datetime", None) is dt.datetime:
            patches.append((module, "datetime", _FrozenDatetime))
    saved = [(module, attr, getattr(module, attr)) for module, attr, _ in patches]
    try:
        for module, attr, value in patches:
            setattr(module, attr, value)
        yield
    finally:
        for module, attr, value in saved:
            setattr(module, attr, value)


def incremental(data, change):
    """One incremental update by pyHanko: `change(writer)`, then the whole file's bytes."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(data))
    change(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def load_signer(key, chain):
    """pyHanko's SimpleSigner.load wants the signer's certificate alone in a file."""
    from pyhanko.sign import signers

    pem = chain.read_text()
    first = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?", pem, re.S).group(0)
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as cert:
        cert.write(first)
    try:
        signer = signers.SimpleSigner.load(str(key), cert.name, ca_chain_files=(str(chain),))
    finally:
        os.unlink(cert.name)
    if signer is None:
        raise SystemExit(f"pyHanko could not load the signer from {key} and {chain}")
    return signer


def small_document(title, pages, rng):
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=1)
    c.setTitle(title)
    c.setAuthor("PT Nusantara Jaya")
    for number in range(1, pages + 1):
        c.setFont("Helvetica-Bold", 14)
        c.drawString(72, 770, title if number == 1 else f"{title} (lanjutan)")
        text = c.beginText(72, 740)
        text.setFont("Helvetica", 10.5)
        text.setLeading(15)
        lines = []
        while len(lines) < 38:
            lines += simpleSplit(paragraph(rng, 2, 4), "Helvetica", 10.5, A4[0] - 144) + [""]
        for line in lines[:38]:
            text.textLine(line)
        c.drawText(text)
        c.setFont("Helvetica", 8)
        c.drawCentredString(A4[0] / 2, 30, f"Halaman {number} dari {pages}")
        c.showPage()
    c.save()
    return buf.getvalue()


# --- 4. a document signed before stamping --------------------------------------------

def make_signed(path, rng):
    from pyhanko.sign import fields, signers
    from pyhanko.stamp import TextStampStyle

    data = small_document("Perjanjian Kerja Sama", 2, rng)
    signer = load_signer(SIGNING / "signer.key.pem", SIGNING / "chain.pem")
    meta = signers.PdfSignatureMetadata(field_name="Signature1", subfilter=fields.SigSeedSubFilter.PADES,
                                        md_algorithm="sha256", reason="Pihak pertama", location="Jakarta")
    # visible, lower left of the last page: the mark (lower right) does not overlap it
    spec = fields.SigFieldSpec("Signature1", on_page=-1, box=(72, 60, 272, 120))
    style = TextStampStyle(stamp_text="Ditandatangani oleh\n%(signer)s\n%(ts)s", border_width=1)
    with reproducible_pyhanko(4):
        from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

        writer = IncrementalPdfFileWriter(io.BytesIO(data))
        out = io.BytesIO()
        signers.PdfSigner(meta, signer=signer, stamp_style=style, new_field_spec=spec).sign_pdf(writer, output=out)
    path.write_bytes(out.getvalue())


def check_signed(path):
    from pyhanko.keys import load_cert_from_pemder
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    with open(path, "rb") as f:
        sigs = PdfFileReader(f).embedded_signatures
        if len(sigs) != 1:
            raise SystemExit(f"{path.name}: {len(sigs)} signatures, expected 1")
        status = validate_pdf_signature(
            sigs[0], ValidationContext(trust_roots=[load_cert_from_pemder(str(SIGNING / "ca.pem"))]))
    if not (status.intact and status.valid and status.trusted and status.coverage.name == "ENTIRE_FILE"):
        raise SystemExit(f"{path.name}: pyHanko does not validate its signature:\n{status.pretty_print_details()}")
    return "pyHanko validates its signature (intact, valid, trusted to the test CA, covers the file)"


# --- 6. a document with earlier incremental updates ----------------------------------

def make_updates(path, rng):
    from pyhanko.pdf_utils import generic
    from pyhanko.sign import fields
    from pyhanko.stamp import TextStamp, TextStampStyle

    data = small_document("Memo Internal", 3, rng)

    def retitle(writer):
        info_ref = writer.trailer.raw_get("/Info")
        info = info_ref.get_object()
        info["/Title"] = generic.TextStringObject("Memo Internal (revisi 1)")
        info["/Subject"] = generic.TextStringObject("Jadwal rapat anggaran")
        writer.mark_update(info_ref)

    def note(writer):
        page_ref, _ = writer.find_page_for_modification(0)
        annot = generic.DictionaryObject({
            generic.NameObject("/Type"): generic.NameObject("/Annot"),
            generic.NameObject("/Subtype"): generic.NameObject("/Text"),
            generic.NameObject("/Rect"): generic.ArrayObject(map(generic.FloatObject, (500, 760, 520, 780))),
            generic.NameObject("/Contents"): generic.TextStringObject("Mohon dicek angka pada paragraf 3."),
            generic.NameObject("/T"): generic.TextStringObject("Reviewer"),
            generic.NameObject("/Open"): generic.BooleanObject(False),
        })
        writer.register_annotation(page_ref, writer.add_object(annot))

    def empty_field(writer):
        fields.append_signature_field(writer, fields.SigFieldSpec("Persetujuan", on_page=0, box=(72, 80, 252, 130)))

    def stamp(writer):
        style = TextStampStyle(stamp_text="DIPERIKSA\n%(ts)s", border_width=2)
        TextStamp(writer, style, text_params={"ts": "01-12-2026"}).apply(0, 400, 700)

    with reproducible_pyhanko(6):
        for change in (retitle, note, empty_field, stamp):
            data = incremental(data, change)
    path.write_bytes(data)


def check_updates(path):
    count = path.read_bytes().count(b"startxref")
    if count < 4:
        raise SystemExit(f"{path.name}: {count} startxref, expected at least 4 (3 earlier updates)")
    return f"{count} startxref (the original and {count - 1} incremental updates)"


# --- 5. object streams ---------------------------------------------------------------

def make_objstm(path, source):
    run(["qpdf", "--object-streams=generate", "--deterministic-id", str(source), str(path)])


def check_objstm(path):
    xref = run(["qpdf", "--show-xref", str(path)])
    compressed = len(re.findall(r": compressed;", xref))
    plain = len(re.findall(r": uncompressed;", xref))
    if compressed < 20 or b"/XRef" not in path.read_bytes():
        raise SystemExit(f"{path.name}: {compressed} objects in object streams, or no cross-reference stream")
    return f"qpdf --show-xref: {compressed} objects in object streams, {plain} not; a /XRef stream"


# --- 7. synthetic files from our tool --------------------------------------------------

def make_synthetic(path, bin_dir, pages, pad_to=None):
    cmd = [str(bin_dir / "meterai-sample-pdf"), str(pages), str(path)]
    if pad_to is not None:
        cmd += ["--pad-to", str(pad_to)]
    run(cmd)
    if pad_to is not None and path.stat().st_size < pad_to * 0.98:
        raise SystemExit(
            f"{path.name}: {path.stat().st_size} bytes, asked for --pad-to {pad_to}: "
            f"{bin_dir / 'meterai-sample-pdf'} ignores --pad-to (built before it had it?)")


# --- checks and the index --------------------------------------------------------------

def run(cmd):
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stdout}{done.stderr}")
    return done.stdout


def qpdf_check(path):
    done = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True)
    if done.returncode != 0 or "No syntax or stream encoding errors found" not in done.stdout:
        raise SystemExit(f"{path.name}: qpdf --check failed ({done.returncode}):\n{done.stdout}{done.stderr}")


def last_page_size(path):
    """Pages and the last page's width and height, read with pyHanko (inherited boxes too)."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    with open(path, "rb") as f:
        reader = PdfFileReader(f)
        pages = int(reader.root["/Pages"]["/Count"])
        node, _ = reader.find_page_for_modification(pages - 1)
        node = node.get_object()
        while "/MediaBox" not in node:
            node = node["/Parent"]
        x0, y0, x1, y1 = (float(v) for v in node["/MediaBox"])
    return pages, x1 - x0, y1 - y0


def entry(path, kind, description, signed_before=False):
    pages, width, height = last_page_size(path)
    x, y = int(width) - 45 - MARK, 40
    assert 0 <= x and x + MARK <= width and y + MARK <= height, (path, width, height)
    data = path.read_bytes()
    return {
        "file": path.name, "kind": kind, "description": description, "pages": pages, "bytes": len(data),
        "page": pages, "x": x, "y": y, "signed_before": signed_before,
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="folder to write the corpus into")
    parser.add_argument("--bin", default=str(ROOT / "target" / "release"),
                        help="folder holding meterai-sample-pdf (default: target/release)")
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bin_dir = pathlib.Path(args.bin)
    started = time.perf_counter()
    entries = []

    def made(name, kind, description, check=None, signed_before=False):
        path = out / name
        qpdf_check(path)
        how = "qpdf --check" + (f"; {check(path)}" if check else "")
        entries.append(entry(path, kind, description, signed_before) | {"checked": how})
        e = entries[-1]
        print(f"{name:<24} {e['bytes']:>10} bytes {e['pages']:>4} pages  ({how})", flush=True)

    make_letter_scan(out / "letter-scan.pdf", random.Random(1))
    made("letter-scan.pdf", "scan", "scanned 3-page letter: one full-page 170 dpi JPEG per A4 page")
    make_report(out / "report-fonts.pdf", random.Random(2))
    made("report-fonts.pdf", "fonts",
         "exported report: embedded TrueType subsets (4 Vera faces), tables, outline, info, xref table")
    make_form(out / "form.pdf")
    made("form.pdf", "form", "AcroForm: text fields, checkbox, radio buttons, combo box, list box; 2 pages")
    make_signed(out / "signed.pdf", random.Random(4))
    made("signed.pdf", "signed", "2-page contract signed before stamping (PAdES, P-256), visible field 'Signature1'",
         check_signed, signed_before=True)
    make_objstm(out / "objstm.pdf", out / "report-fonts.pdf")
    made("objstm.pdf", "objstm", "report-fonts.pdf with object streams and a cross-reference stream (qpdf)",
         check_objstm)
    make_updates(out / "updates.pdf", random.Random(6))
    made("updates.pdf", "updates",
         "3-page memo with 4 incremental updates (info, note annotation, empty signature field, text stamp)",
         check_updates)
    for pages in (1, 50, 500):
        make_synthetic(out / f"synthetic-{pages}.pdf", bin_dir, pages)
        made(f"synthetic-{pages}.pdf", "synthetic", f"meterai-sample-pdf, {pages} page(s)")
    pad_to = (out / "synthetic-500.pdf").stat().st_size
    make_synthetic(out / "synthetic-1-padded.pdf", bin_dir, 1, pad_to=pad_to)
    made("synthetic-1-padded.pdf", "synthetic", f"meterai-sample-pdf, 1 page padded to {pad_to} bytes")

    (out / "corpus.json").write_text(json.dumps(entries, indent=2) + "\n")
    print(f"{len(entries)} files, {sum(e['bytes'] for e in entries)} bytes in {time.perf_counter() - started:.1f} s; "
          f"index: {out / 'corpus.json'}")


if __name__ == "__main__":
    main()
