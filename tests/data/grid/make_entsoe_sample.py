"""Make ``entsoe-py-generation.csv`` with entsoe-py itself (not run by the tests):

    python -m venv /tmp/entsoe && /tmp/entsoe/bin/pip install entsoe-py==0.8.1
    /tmp/entsoe/bin/python tests/data/grid/make_entsoe_sample.py

An ENTSO-E "actual generation per production type" document (A75, the XML the transparency
platform's API answers ``EntsoePandasClient.query_generation`` with) for 24 hours across the
2023-03-26 change from CET to CEST, with invented MW values, goes through entsoe-py's own parser
and time-zone step (``parse_generation``, then ``tz_convert`` to the bidding zone's zone, as
``query_generation`` does), and pandas writes it with ``to_csv()``: the file people get.
"""

from __future__ import annotations

from pathlib import Path

from entsoe.parsers import parse_generation

OUT = Path(__file__).with_name("entsoe-py-generation.csv")
START, END = "2023-03-25T23:00Z", "2023-03-26T23:00Z"
# psrType: (name in entsoe-py, MW at hour h)
TYPES = {
    "B01": lambda h: 4200 + 10 * h,  # Biomass
    "B04": lambda h: 9000 - 150 * h,  # Fossil Gas
    "B10": lambda h: 300 + 40 * (h % 6),  # Hydro Pumped Storage (generation)
    "B14": lambda h: 2900,  # Nuclear
    "B16": lambda h: max(0, 12000 - 1500 * abs(h - 12)),  # Solar
    "B18": lambda h: 3000 + 100 * (h % 5),  # Wind Offshore
    "B19": lambda h: 15000 - 200 * h,  # Wind Onshore
}
PUMPING = lambda h: 800 if h < 6 else 0  # noqa: E731  Hydro Pumped Storage (consumption)


def series(psr: str, values: list[float], consumption: bool = False) -> str:
    # ENTSO-E: generation into the zone is "in", a plant's own consumption (pumping) "out"
    side = "outBiddingZone_Domain.mRID" if consumption else "inBiddingZone_Domain.mRID"
    points = "".join(
        f"<Point><position>{i + 1}</position><quantity>{v:g}</quantity></Point>"
        for i, v in enumerate(values)
    )
    return (
        "<TimeSeries><mRID>1</mRID><businessType>A01</businessType>"
        f'<objectAggregation>A08</objectAggregation><{side} codingScheme="A01">'
        f"10Y1001A1001A82H</{side}><quantity_Measure_Unit.name>MAW</quantity_Measure_Unit.name>"
        f"<curveType>A01</curveType><MktPSRType><psrType>{psr}</psrType></MktPSRType>"
        f"<Period><timeInterval><start>{START}</start><end>{END}</end></timeInterval>"
        f"<resolution>PT60M</resolution>{points}</Period></TimeSeries>"
    )


def main() -> None:
    body = "".join(series(psr, [f(h) for h in range(24)]) for psr, f in TYPES.items())
    body += series("B10", [PUMPING(h) for h in range(24)], consumption=True)
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<GL_MarketDocument xmlns="urn:iec62325.351:tc57wg16:451-6:generationloaddocument:3:0">'
        "<mRID>sample</mRID><type>A75</type><process.processType>A16</process.processType>"
        f"<time_Period.timeInterval><start>{START}</start><end>{END}</end>"
        f"</time_Period.timeInterval>{body}</GL_MarketDocument>"
    )
    frame = parse_generation(xml).tz_convert("Europe/Berlin")
    OUT.write_text(frame.to_csv(), encoding="utf-8")
    print(f"wrote {OUT.name}: {len(frame)} rows")


if __name__ == "__main__":
    main()
