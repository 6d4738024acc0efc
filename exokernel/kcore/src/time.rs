//! Calendar arithmetic for the real-time clock: the CMOS clock says year,
//! month, day, hour, minute and second (in BCD or binary, 12- or 24-hour);
//! the kernel keeps time as nanoseconds since 1970-01-01 UTC.

/// A time the real-time clock reported, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    /// Full year (e.g. 2026).
    pub year: u32,
    /// 1 to 12.
    pub month: u32,
    /// 1 to 31.
    pub day: u32,
    /// 0 to 23.
    pub hour: u32,
    /// 0 to 59.
    pub minute: u32,
    /// 0 to 59 (60 for a leap second is taken as 59).
    pub second: u32,
}

/// The raw CMOS registers: seconds, minutes, hours, day, month, year (two
/// digits), century (0 if the machine has no century register), and
/// status register B (bit 2: binary, else BCD; bit 1: 24-hour, else
/// 12-hour with bit 7 of the hour meaning PM).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmosRegisters {
    /// Register 0x00.
    pub seconds: u8,
    /// Register 0x02.
    pub minutes: u8,
    /// Register 0x04.
    pub hours: u8,
    /// Register 0x07.
    pub day: u8,
    /// Register 0x08.
    pub month: u8,
    /// Register 0x09.
    pub year: u8,
    /// Register 0x32 (ACPI's usual century register), or 0.
    pub century: u8,
    /// Register 0x0b.
    pub status_b: u8,
}

fn from_bcd(v: u8) -> Option<u32> {
    let (hi, lo) = (u32::from(v >> 4), u32::from(v & 0xf));
    (hi < 10 && lo < 10).then_some(hi * 10 + lo)
}

impl CmosRegisters {
    /// Decodes the registers; `None` if any field is out of range (a clock
    /// that is not there, or was read mid-update).
    pub fn decode(&self) -> Option<DateTime> {
        let binary = self.status_b & 0x04 != 0;
        let h24 = self.status_b & 0x02 != 0;
        let num = |v: u8| if binary { Some(u32::from(v)) } else { from_bcd(v) };
        let pm = !h24 && self.hours & 0x80 != 0;
        let mut hour = num(self.hours & 0x7f)?;
        if !h24 {
            if !(1..=12).contains(&hour) {
                return None;
            }
            hour = hour % 12 + if pm { 12 } else { 0 };
        }
        let two = num(self.year)?;
        let century = if self.century == 0 { None } else { num(self.century) };
        // Without a century register: 2000-2099 (the clock cannot say).
        let year = century.map_or(2000 + two, |c| c * 100 + two);
        let t = DateTime {
            year,
            month: num(self.month)?,
            day: num(self.day)?,
            hour,
            minute: num(self.minutes)?,
            second: num(self.seconds)?.min(59),
        };
        let ok = two < 100
            && (1970..=2199).contains(&t.year)
            && (1..=12).contains(&t.month)
            && (1..=31).contains(&t.day)
            && t.hour < 24
            && t.minute < 60;
        ok.then_some(t)
    }
}

/// Days from 1970-01-01 to `year-month-day` (proleptic Gregorian; Howard
/// Hinnant's days_from_civil).
pub fn days_from_civil(year: u32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl DateTime {
    /// Seconds since 1970-01-01 00:00:00 UTC.
    pub fn unix_seconds(&self) -> u64 {
        let days = days_from_civil(self.year, self.month, self.day);
        (days * 86_400 + i64::from(self.hour * 3600 + self.minute * 60 + self.second)) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Registers from `[seconds, minutes, hours, day, month, year,
    /// century, status B]`.
    fn regs([s, mi, h, d, mo, y, c, b]: [u8; 8]) -> CmosRegisters {
        CmosRegisters { seconds: s, minutes: mi, hours: h, day: d, month: mo, year: y, century: c, status_b: b }
    }

    #[test]
    fn calendar_days_match_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 1, 1), 10_957);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017); // 2000 is a leap year
        assert_eq!(days_from_civil(2100, 3, 1), 47_541); // 2100 is not
        let t = DateTime { year: 2026, month: 11, day: 27, hour: 23, minute: 58, second: 7 };
        assert_eq!(t.unix_seconds(), 1_795_823_887);
    }

    #[test]
    fn bcd_and_binary_and_twelve_hour_clocks_decode_alike() {
        // 2026-11-27 23:58:07 in BCD, 24-hour, century register 0x20.
        let bcd = regs([0x07, 0x58, 0x23, 0x27, 0x11, 0x26, 0x20, 0x02]).decode().unwrap();
        let bin = regs([7, 58, 23, 27, 11, 26, 20, 0x06]).decode().unwrap();
        // 11 PM on a 12-hour BCD clock, no century register.
        let pm = regs([0x07, 0x58, 0x80 | 0x11, 0x27, 0x11, 0x26, 0, 0x00]).decode().unwrap();
        assert_eq!(bcd, bin);
        assert_eq!(bcd, pm);
        assert_eq!(bcd.unix_seconds(), 1_795_823_887);
        // 12 AM is midnight, 12 PM noon.
        assert_eq!(regs([0, 0, 0x12, 1, 1, 0x26, 0, 0]).decode().unwrap().hour, 0);
        assert_eq!(regs([0, 0, 0x80 | 0x12, 1, 1, 0x26, 0, 0]).decode().unwrap().hour, 12);
    }

    #[test]
    fn nonsense_is_refused() {
        assert_eq!(regs([0x7a, 0, 0, 1, 1, 0x26, 0, 0x02]).decode(), None, "not BCD");
        assert_eq!(regs([0, 0, 0x24, 1, 1, 0x26, 0, 0x02]).decode(), None, "hour 24");
        assert_eq!(regs([0, 0, 0, 0, 1, 0x26, 0, 0x02]).decode(), None, "day 0");
        assert_eq!(regs([0, 0, 0, 1, 0x13, 0x26, 0, 0x02]).decode(), None, "month 13");
        assert_eq!(regs([0, 0, 0x13, 1, 1, 0x26, 0, 0x00]).decode(), None, "hour 13 on a 12-hour clock");
        assert_eq!(regs([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).decode(), None, "no clock");
    }
}
