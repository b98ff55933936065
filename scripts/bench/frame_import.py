"""Benchmark: import + validate + deduplicate + sample a 1,000,000-row CSV frame.

Writes a synthetic one-stop-shop export (title rows, Vietnamese headers, mixed phone
formats, repeat customers, unreturned dossiers, a totals row), then times
`frames.import_and_sample` on SQLite and on PostgreSQL and prints wall time and peak
memory (ru_maxrss of the measuring child process). Targets: under 20 s, under 2 GB.

    .venv/bin/python scripts/bench/frame_import.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

FIELDS = ["Đất đai", "Hộ tịch", "Xây dựng", "Môi trường", "Tài nguyên nước", "Khoáng sản", "Giao thông",
          "Công thương", "Y tế", "Giáo dục", "Lao động", "Tư pháp"]
AGENCIES = ["Sở Tài nguyên và Môi trường", "Sở Tư pháp", "UBND xã Nam Dong", "UBND phường Nghĩa Đức"]
PREFIXES = ["032", "035", "038", "086", "096", "097", "070", "079", "090", "093", "083", "088", "091", "094", "056"]


def write_frame(path: Path, rows: int) -> None:
    rng = random.Random(1)
    people = max(1, int(rows * 0.7))
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("UBND TỈNH LÂM ĐỒNG,,,,,,\nBÁO CÁO HỒ SƠ ĐÃ TRẢ KẾT QUẢ NĂM 2026,,,,,,\n,,,,,,\n")
        out.write("Mã hồ sơ,Cơ quan,Lĩnh vực,Chủ hồ sơ,Số điện thoại,Ngày tiếp nhận,Ngày trả kết quả\n")
        lines = []
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
            lines.append(f"HS-{i},{AGENCIES[i % 4]},{FIELDS[(i * 7) % 12]},Người {person},{phone},"
                         f"{day:02d}/{1 + i % 12:02d}/2026,{returned}\n")
            if len(lines) == 100_000:
                out.writelines(lines)
                lines.clear()
        out.writelines(lines)
        out.write(f"Tổng cộng,,,,,,{rows}\n")


def measure(url: str, frame: Path) -> dict[str, float | dict[str, int]]:
    """Runs in a child process so ru_maxrss is this import's own peak."""
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
    started = time.perf_counter()
    with db.begin() as session:
        campaign = session.get_one(Campaign, campaign_id)
        report = frames.import_and_sample(session, campaign, frame, SampleRule("seed002"), 1, now,
                                          reserve_share=0.2, replicates=2)
    elapsed = time.perf_counter() - started
    db.dispose()
    return {"seconds": elapsed, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rows": report.rows, "eligible": report.eligible, "drawn": report.drawn, "reserve": report.reserve,
            "rejected": len(report.rejected), "excluded": report.excluded}


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--measure":
        print(json.dumps(measure(sys.argv[2], Path(sys.argv[3]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", default=os.environ.get("BENCH_DATABASE_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/sipas_bench"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        frame = Path(tmp) / "frame.csv"
        started = time.perf_counter()
        write_frame(frame, args.rows)
        print(f"frame               {args.rows:,} rows, {frame.stat().st_size / 1e6:.0f} MB "
              f"(written in {time.perf_counter() - started:.1f} s)")
        sys.path.insert(0, str(ROOT / "scripts" / "bench"))
        from webhook_throughput import recreate_database

        recreate_database(args.postgres)
        for label, url in (("SQLite", f"sqlite:///{tmp}/bench.db"), ("PostgreSQL", args.postgres)):
            out = subprocess.run([sys.executable, __file__, "--measure", url, str(frame)], capture_output=True,
                                 text=True, check=True, cwd=ROOT)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{label:<20}{result['seconds']:.1f} s, peak {result['peak_mb']:.0f} MB; "
                  f"eligible {result['eligible']:,}, drawn {result['drawn']}, reserve {result['reserve']}, "
                  f"rejected {result['rejected']:,}, excluded {result['excluded']}")


if __name__ == "__main__":
    main()
