"""Benchmark: import + validate + deduplicate + sample a 1,000,000-row CSV frame and a
100,000-row XLSX frame.

Writes a synthetic one-stop-shop export (title rows, Vietnamese headers, mixed phone
formats, repeat customers, unreturned dossiers, a totals row and a signature block), then
times `frames.import_and_sample` on SQLite and on PostgreSQL against a plain
`pandas.read_csv(path, skiprows=3)` of the same file, run after run in turn, and prints
the medians, the ratio import / read_csv and peak memory (ru_maxrss of the measuring child
process, so each figure is that run's own peak). The XLSX frame (written with XlsxWriter)
is imported the same way.

Targets (issue 18): the CSV import within 3x read_csv and under 1 GB; the XLSX import
under 10 s with bounded memory.

    .venv/bin/python scripts/bench/frame_import.py [--rows 1000000] [--xlsx-rows 100000] [--repeat 3]

BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/sipas_bench) is
dropped and recreated.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

FIELDS = ["Đất đai", "Hộ tịch", "Xây dựng", "Môi trường", "Tài nguyên nước", "Khoáng sản", "Giao thông",
          "Công thương", "Y tế", "Giáo dục", "Lao động", "Tư pháp"]
AGENCIES = ["Sở Tài nguyên và Môi trường", "Sở Tư pháp", "UBND xã Nam Dong", "UBND phường Nghĩa Đức"]
PREFIXES = ["032", "035", "038", "086", "096", "097", "070", "079", "090", "093", "083", "088", "091", "094", "056"]
TITLE = [["UBND TỈNH LÂM ĐỒNG"], ["BÁO CÁO HỒ SƠ ĐÃ TRẢ KẾT QUẢ NĂM 2026"], []]
HEADER = ["Mã hồ sơ", "Cơ quan", "Lĩnh vực", "Chủ hồ sơ", "Số điện thoại", "Ngày tiếp nhận", "Ngày trả kết quả"]
# What one-stop-shop exports put under the table: titles, place and date, names.
SIGNATURE = [[], ["", "Người lập biểu", "", "", "Lâm Đồng, ngày 15 tháng 11 năm 2026"],
             ["", "", "", "", "Thủ trưởng đơn vị"], ["", "(Ký, ghi rõ họ tên)", "", "", "(Ký tên, đóng dấu)"],
             [], [], ["", "Nguyễn Văn Lập", "", "", "Trần Thị Trưởng"]]


def frame_rows(rows: int) -> Iterator[list[str]]:
    """The rows of the synthetic export, title to signature, as text cells."""
    rng = random.Random(1)
    people = max(1, int(rows * 0.7))
    yield from TITLE
    yield HEADER
    for i in range(rows):
        person = rng.randrange(people)
        national = PREFIXES[person % len(PREFIXES)] + f"{person % 10_000_000:07d}"
        style = person % 5
        phone = (national[1:] if style == 0 else f"{national[:4]} {national[4:7]} {national[7:]}" if style == 1
                 else "+84" + national[1:] if style == 2 else national)
        if i % 250 == 0:
            phone = "không có"
        day = 1 + i % 28
        returned = "" if i % 40 == 0 else f"{day:02d}/{1 + i % 12:02d}/2026"
        yield [f"HS-{i}", AGENCIES[i % 4], FIELDS[(i * 7) % 12], f"Người {person}", phone,
               f"{day:02d}/{1 + i % 12:02d}/2026", returned]
    yield ["Tổng cộng", "", "", "", "", "", str(rows)]
    yield from SIGNATURE


def write_csv(path: Path, rows: int) -> None:
    width = len(HEADER)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerows(row + [""] * (width - len(row)) for row in frame_rows(rows))


def write_xlsx(path: Path, rows: int) -> None:
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = workbook.add_worksheet("Hồ sơ")
    for index, row in enumerate(frame_rows(rows)):
        # Exports store some phones as numbers (the leading 0 lost): keep that mix.
        sheet.write_row(index, 0, [int(c) if c.isdigit() and len(c) == 9 else c for c in row])
    workbook.close()


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """User + system CPU of this process: less disturbed than wall time by other work on the machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure_read_csv(frame: Path) -> dict[str, object]:
    """The yardstick: pandas reading the same file with its defaults from the header row on."""
    import pandas as pd

    started, cpu = time.perf_counter(), cpu_seconds()
    table = pd.read_csv(frame, skiprows=3)
    return {"seconds": time.perf_counter() - started, "cpu": cpu_seconds() - cpu, "peak_mb": peak_mb(),
            "rows": len(table)}


def measure_import(url: str, frame: Path) -> dict[str, object]:
    from ivr_service.core.sampling import SampleRule
    from ivr_service.persistence import migrate
    from ivr_service.persistence.db import Database
    from ivr_service.persistence.models import Agency, Campaign, utcnow
    from ivr_service.services import frames

    migrate.upgrade(url)
    db = Database(url)
    now = utcnow()
    with db.begin() as session:
        agency = Agency(code=f"B{time.time_ns()}", name="Bench", created_at=now)
        session.add(agency)
        session.flush()
        campaign = Campaign(agency_id=agency.id, name="bench", questionnaire_key="sipas-2024", created_at=now,
                            window={}, retry={})
        session.add(campaign)
        session.flush()
        campaign_id = campaign.id
    started, cpu = time.perf_counter(), cpu_seconds()
    with db.begin() as session:
        campaign = session.get_one(Campaign, campaign_id)
        report = frames.import_and_sample(session, campaign, frame, SampleRule("seed002"), 1, now,
                                          reserve_share=0.2, replicates=2)
    elapsed, used = time.perf_counter() - started, cpu_seconds() - cpu
    db.dispose()
    return {"seconds": elapsed, "cpu": used, "peak_mb": peak_mb(), "rows": report.rows, "eligible": report.eligible,
            "drawn": report.drawn, "reserve": report.reserve, "rejected": len(report.rejected),
            "excluded": report.excluded, "strata": len(report.strata), "ignored": len(report.ignored_rows)}


def child(*args: str) -> dict[str, object]:
    """Run one measurement in a fresh process: its peak memory is its own."""
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True, cwd=ROOT)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def median(results: list[dict[str, object]], key: str) -> float:
    return statistics.median(float(str(r[key])) for r in results)


def runs(results: list[dict[str, object]]) -> str:
    """Wall seconds of each run, and the median CPU seconds."""
    return (", ".join(f"{float(str(r['seconds'])):.2f}" for r in results)
            + f"; CPU {median(results, 'cpu'):.2f} s")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--measure-read-csv":
        print(json.dumps(measure_read_csv(Path(sys.argv[2]))))
        return
    if len(sys.argv) > 2 and sys.argv[1] == "--measure":
        print(json.dumps(measure_import(sys.argv[2], Path(sys.argv[3]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the CSV frame (0: no CSV run)")
    parser.add_argument("--xlsx-rows", type=int, default=100_000, help="rows of the XLSX frame (0: no XLSX run)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement, in turn; medians shown")
    parser.add_argument("--postgres", default=os.environ.get("BENCH_DATABASE_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/sipas_bench"))
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        databases = [("SQLite", f"sqlite:///{tmp}/bench.db")]
        if not args.no_postgres:
            sys.path.insert(0, str(ROOT / "scripts" / "bench"))
            from webhook_throughput import recreate_database

            recreate_database(args.postgres)
            databases.append(("PostgreSQL", args.postgres))
        if args.rows:
            frame = Path(tmp) / "frame.csv"
            started = time.perf_counter()
            write_csv(frame, args.rows)
            print(f"CSV frame               {args.rows:,} rows, {frame.stat().st_size / 1e6:.0f} MB "
                  f"(written in {time.perf_counter() - started:.1f} s); {args.repeat} runs each, medians")
            baseline: list[dict[str, object]] = []
            imports: dict[str, list[dict[str, object]]] = {label: [] for label, _ in databases}
            for _ in range(args.repeat):   # in turn, so a busy moment hits every measurement alike
                baseline.append(child("--measure-read-csv", str(frame)))
                for label, url in databases:
                    imports[label].append(child("--measure", url, str(frame)))
            read_s, read_cpu = median(baseline, "seconds"), median(baseline, "cpu")
            print(f"{'pandas.read_csv':<24}{read_s:.2f} s, peak {median(baseline, 'peak_mb'):.0f} MB "
                  f"(runs: {runs(baseline)})")
            for label, results in imports.items():
                seconds = median(results, "seconds")
                last = results[-1]
                print(f"{label + ' import':<24}{seconds:.2f} s = {seconds / read_s:.1f}x read_csv "
                      f"(CPU {median(results, 'cpu') / read_cpu:.1f}x), "
                      f"peak {median(results, 'peak_mb'):.0f} MB "
                      f"(runs: {runs(results)}); "
                      f"eligible {last['eligible']:,}, drawn {last['drawn']}, reserve {last['reserve']}, "
                      f"rejected {last['rejected']:,}, strata {last['strata']}, ignored rows {last['ignored']}, "
                      f"excluded {last['excluded']}")
        if args.xlsx_rows:
            book = Path(tmp) / "frame.xlsx"
            started = time.perf_counter()
            write_xlsx(book, args.xlsx_rows)
            print(f"XLSX frame              {args.xlsx_rows:,} rows, {book.stat().st_size / 1e6:.1f} MB "
                  f"(written in {time.perf_counter() - started:.1f} s)")
            xlsx: dict[str, list[dict[str, object]]] = {label: [] for label, _ in databases}
            for _ in range(args.repeat):
                for label, url in databases:
                    xlsx[label].append(child("--measure", url, str(book)))
            for label, results in xlsx.items():
                last = results[-1]
                print(f"{label + ' XLSX import':<24}{median(results, 'seconds'):.2f} s, "
                      f"peak {median(results, 'peak_mb'):.0f} MB "
                      f"(runs: {runs(results)}); "
                      f"eligible {last['eligible']:,}, drawn {last['drawn']}, rejected {last['rejected']:,}, "
                      f"strata {last['strata']}, ignored rows {last['ignored']}")


if __name__ == "__main__":
    main()
