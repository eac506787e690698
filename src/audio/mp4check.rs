//! A check of an MP4/M4A file's atom tree before symphonia reads it. symphonia's MP4 reader
//! sizes its tables from the counts written in the file, so a damaged count (found by fuzzing:
//! an `stts` claiming four billion entries) asks for tens of gigabytes and aborts the process.
//! Here every atom must fit in its parent and every sample table must fit in its atom. The
//! probe finds an MP4 wherever its `ftyp` marker is (after an ID3 tag, after damaged bytes), so
//! the check runs from there, inside the probe (`decode::probe`), not from the file's start.

use std::io::{Read, Seek, SeekFrom};

/// Atoms whose payload is a list of atoms.
const CONTAINERS: [&[u8; 4]; 11] =
    [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"dinf", b"edts", b"mvex", b"moof", b"traf", b"udta"];
/// The most of `moov` read into memory to check it.
const MAX_MOOV: u64 = 256 << 20;

/// Checks the atom tree that starts at byte `start` of `source` and runs to its end; the error
/// says what is wrong. `source` is left wherever the check stopped.
pub fn check(source: &mut (impl Read + Seek), start: u64) -> Result<(), String> {
    let len = source.seek(SeekFrom::End(0)).map_err(|e| e.to_string())?;
    let mut pos = start;
    while pos < len {
        source.seek(SeekFrom::Start(pos)).map_err(|e| e.to_string())?;
        let mut head = [0u8; 16];
        let n = read_up_to(source, &mut head)?;
        let (kind, header, size) = header(&head[..n], len - pos)?;
        if &kind == b"moov" {
            if size > MAX_MOOV {
                return Err(format!("its moov atom is {size} bytes, more than any real file has"));
            }
            let mut body = vec![0u8; usize::try_from(size - header).map_err(|e| e.to_string())?];
            source.seek(SeekFrom::Start(pos + header)).map_err(|e| e.to_string())?;
            source.read_exact(&mut body).map_err(|e| e.to_string())?;
            children(&body, 0)?;
        }
        pos += size;
    }
    Ok(())
}

/// Fills `buf` as far as the source goes.
fn read_up_to(source: &mut impl Read, buf: &mut [u8]) -> Result<usize, String> {
    let mut filled = 0;
    while filled < buf.len() {
        match source.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(filled)
}

/// (type, header length, atom size) of the atom starting `head`, with `room` bytes left for it.
fn header(head: &[u8], room: u64) -> Result<([u8; 4], u64, u64), String> {
    if head.len() < 8 {
        return Err("an atom header is cut short".into());
    }
    let mut kind = [0u8; 4];
    kind.copy_from_slice(&head[4..8]);
    let short = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
    let (header, size) = match short {
        0 => (8, room),
        1 => {
            let long = head.get(8..16).ok_or("an atom header is cut short")?;
            (16, u64::from_be_bytes(long.try_into().map_err(|_| "an atom header is cut short")?))
        }
        s => (8, s),
    };
    if size < header || size > room {
        return Err(format!(
            "atom {} claims {size} bytes where {room} are left",
            String::from_utf8_lossy(&kind)
        ));
    }
    Ok((kind, header, size))
}

fn children(body: &[u8], depth: usize) -> Result<(), String> {
    if depth > 16 {
        return Err("its atoms are nested too deeply".into());
    }
    let mut pos = 0usize;
    while pos + 8 <= body.len() {
        let room = (body.len() - pos) as u64;
        let (kind, header, size) = header(&body[pos..], room)?;
        let (header, size) = (header as usize, size as usize);
        let payload = &body[pos + header..pos + size];
        if CONTAINERS.contains(&&kind) {
            children(payload, depth + 1)?;
        } else if &kind == b"meta" {
            // A full atom: version and flags, then atoms.
            children(payload.get(4..).unwrap_or_default(), depth + 1)?;
        } else {
            table(kind, payload)?;
        }
        pos += size;
    }
    Ok(())
}

/// The sample tables: a count, then that many entries of a fixed size.
fn table(kind: [u8; 4], payload: &[u8]) -> Result<(), String> {
    let word =
        |at: usize| payload.get(at..at + 4).map(|b| u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])));
    let (count, entry, start) = match &kind {
        // Sample descriptions (`stsd`) are atoms of at least 8 bytes.
        b"stts" | b"ctts" | b"co64" | b"stsd" => (word(4), 8, 8),
        b"stsc" => (word(4), 12, 8),
        b"stco" | b"stss" => (word(4), 4, 8),
        // A sample size of zero means one size per sample follows.
        b"stsz" => match word(4) {
            Some(0) => (word(8), 4, 12),
            _ => return Ok(()),
        },
        _ => return Ok(()),
    };
    let count = count.ok_or_else(|| format!("its {} table is cut short", String::from_utf8_lossy(&kind)))?;
    if count.saturating_mul(entry) > payload.len().saturating_sub(start) as u64 {
        return Err(format!(
            "its {} table claims {count} entries in {} bytes",
            String::from_utf8_lossy(&kind),
            payload.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn atom(kind: [u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut out = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&kind);
        out.extend_from_slice(payload);
        out
    }

    fn file(stts_count: u32, entries: usize) -> Vec<u8> {
        let mut stts = vec![0u8; 4];
        stts.extend_from_slice(&stts_count.to_be_bytes());
        stts.extend(std::iter::repeat_n(0u8, entries * 8));
        let stbl = atom(*b"stbl", &atom(*b"stts", &stts));
        let moov = atom(*b"moov", &atom(*b"trak", &atom(*b"mdia", &atom(*b"minf", &stbl))));
        let mut out = atom(*b"ftyp", b"M4A \0\0\0\0");
        out.extend(moov);
        out
    }

    #[test]
    fn a_table_that_claims_more_entries_than_its_atom_holds_is_refused() {
        check(&mut Cursor::new(file(3, 3)), 0).expect("a consistent file passes");
        let why = check(&mut Cursor::new(file(u32::MAX, 3)), 0).expect_err("a damaged count is refused");
        assert!(why.contains("stts table claims 4294967295 entries"), "{why}");
    }

    #[test]
    fn an_atom_larger_than_the_file_is_refused() {
        let mut bytes = file(1, 1);
        let moov_at = 16;
        bytes[moov_at..moov_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        let why = check(&mut Cursor::new(bytes), 0).expect_err("refused");
        assert!(why.contains("moov claims"), "{why}");
    }

    #[test]
    fn the_tree_is_checked_from_where_it_starts() {
        // Anything before the tree (a tag, a damaged head) is not part of it.
        let mut bytes = b"ID3 and other bytes".to_vec();
        let start = bytes.len() as u64;
        bytes.extend(file(u32::MAX, 3));
        assert!(check(&mut Cursor::new(bytes), start).is_err());
    }
}
