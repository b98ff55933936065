"""Write the synthetic demo transaction list shipped in config/demo/ (deterministic).

Looks like a one-stop-shop export: Vietnamese headers, phone numbers in mixed formats
(some stored as integers, some legacy 11-digit), a few unusable numbers, repeat
customers and dossiers not yet returned. All names and numbers are invented.
"""

import csv
import random
from datetime import date, timedelta
from pathlib import Path

FIELDS = {
    "Đất đai": ("Đăng ký biến động đất đai", 0.40),
    "Môi trường": ("Cấp giấy phép môi trường", 0.20),
    "Tài nguyên nước": ("Cấp giấy phép khai thác nước", 0.15),
    "Khoáng sản": ("Cấp giấy phép khai thác khoáng sản", 0.10),
    "Đo đạc bản đồ": ("Cung cấp dữ liệu đo đạc", 0.10),
    "Biển và hải đảo": ("Giao khu vực biển", 0.05),
}
SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Hồ"]
MIDDLE = ["Văn", "Thị", "Hữu", "Minh", "Thanh", "Ngọc", "Quang"]
GIVEN = ["An", "Bình", "Chi", "Dũng", "Hà", "Hùng", "Lan", "Mai", "Nam", "Phương", "Sơn", "Tú"]
PREFIXES = ["032", "035", "038", "086", "096", "097", "070", "079", "090", "093", "083", "088", "091", "094", "056"]


def phone(rng: random.Random) -> str:
    national = rng.choice(PREFIXES) + f"{rng.randrange(10**7):07d}"
    style = rng.random()
    if style < 0.15:
        return national[1:]                      # Excel dropped the leading 0
    if style < 0.30:
        return f"{national[:4]} {national[4:7]} {national[7:]}"
    if style < 0.40:
        return "+84" + national[1:]
    if style < 0.45:
        return f"{national[:4]}.{national[4:7]}.{national[7:]}"
    return national


DEFAULT_PATH = Path(__file__).resolve().parent.parent / "config" / "demo" / "transactions.csv"


def main(path: Path = DEFAULT_PATH, rows: int = 1000) -> None:
    rng = random.Random(20241101)
    names = list(FIELDS)
    weights = [FIELDS[f][1] for f in names]
    start = date(2024, 1, 2)
    people: list[tuple[str, str]] = []
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["STT", "Mã hồ sơ", "Tên thủ tục", "Lĩnh vực", "Chủ hồ sơ", "Số điện thoại",
                         "Ngày tiếp nhận", "Ngày trả kết quả"])
        for i in range(1, rows + 1):
            field = rng.choices(names, weights)[0]
            received = start + timedelta(days=rng.randrange(300))
            returned = received + timedelta(days=rng.randrange(3, 20))
            if people and rng.random() < 0.05:
                name, number = rng.choice(people)     # a repeat customer
            else:
                name = f"{rng.choice(SURNAMES)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"
                number = phone(rng)
                if rng.random() < 0.02:
                    number = rng.choice(["", "không có", "0281234", "12345678901234"])
                people.append((name, number))
            code = f"000.00.20.H19-{received:%y%m%d}-{i:04d}"
            returned_text = "" if rng.random() < 0.04 else returned.strftime("%d/%m/%Y")
            writer.writerow([i, code, FIELDS[field][0], field, name, number,
                             received.strftime("%d/%m/%Y"), returned_text])


if __name__ == "__main__":
    main()
