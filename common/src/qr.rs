//! QR codes of ticket passes, as SVG (for pages and mail) and PNG (for wallets and printers).
//!
//! Error correction M (15% of the code may be damaged or covered) with the standard quiet zone
//! of 4 modules. The PNG is written here — one grey level per module, 1 bit per pixel — rather
//! than pulling in an image library for one picture.

use std::io::Write;

use qrcode::{Color, EcLevel, QrCode};

/// Pixels per module in the PNG: a ~160-character pass (57 modules plus the quiet zone) makes
/// a 520-pixel square, sharp when printed at 4–5 cm.
const PNG_SCALE: usize = 8;
/// Modules of white around the code.
const QUIET_ZONE: usize = 4;

/// The QR code of `text`; `None` only for text too long for any QR code (a pass never is).
fn code(text: &str) -> Option<QrCode> {
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).ok()
}

/// An SVG document of the code.
pub fn svg(text: &str) -> Option<String> {
    let code = code(text)?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .quiet_zone(true)
            .min_dimensions(240, 240)
            .build(),
    )
}

/// A PNG image of the code.
pub fn png(text: &str) -> Option<Vec<u8>> {
    let code = code(text)?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET_ZONE) * PNG_SCALE;
    let row_bytes = side.div_ceil(8);
    // Each scanline: filter byte 0, then 1 bit per pixel, 1 = white.
    let mut raw = Vec::with_capacity(side * (row_bytes + 1));
    for y in 0..side {
        raw.push(0);
        let mut line = vec![0xffu8; row_bytes];
        let module_y = (y / PNG_SCALE).checked_sub(QUIET_ZONE);
        for x in 0..side {
            let module_x = (x / PNG_SCALE).checked_sub(QUIET_ZONE);
            let dark = match (module_x, module_y) {
                (Some(mx), Some(my)) if mx < modules && my < modules => {
                    colors[my * modules + mx] == Color::Dark
                }
                _ => false,
            };
            if dark {
                line[x / 8] &= !(0x80 >> (x % 8));
            }
        }
        raw.extend_from_slice(&line);
    }
    let mut compressed = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    compressed.write_all(&raw).ok()?;
    let data = compressed.finish().ok()?;

    let side = u32::try_from(side).ok()?;
    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&side.to_be_bytes());
    header.extend_from_slice(&side.to_be_bytes());
    // Bit depth 1, colour type 0 (grey), compression 0, filter 0, no interlace.
    header.extend_from_slice(&[1, 0, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &header);
    chunk(&mut png, b"IDAT", &data);
    chunk(&mut png, b"IEND", &[]);
    Some(png)
}

/// Appends one PNG chunk: length, type, data, CRC-32 of type and data.
fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
    png.extend_from_slice(&length.to_be_bytes());
    png.extend_from_slice(kind);
    png.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    png.extend_from_slice(&crc.finalize().to_be_bytes());
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    const PASS: &str = "k1.AQIDBAUGBwgJCgsMDQ4PEAAAAAEBAgMEBQZmUMD_7gAAAAAAq81zdGFsbHMtQS0xMg.\
        c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmUtc2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmUtc2lnbmE";

    /// Reads the PNG back: its size and, per module, whether it is dark; the same modules as
    /// the code.
    #[test]
    fn the_png_holds_exactly_the_codes_modules() {
        let bytes = png(PASS).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let side = u32::from_be_bytes(bytes[16..20].try_into().unwrap()) as usize;
        let code = code(PASS).unwrap();
        let modules = code.width();
        assert_eq!(side, (modules + 2 * QUIET_ZONE) * PNG_SCALE);
        // The IDAT chunk follows the 25 bytes of signature and IHDR.
        let idat_len = u32::from_be_bytes(bytes[33..37].try_into().unwrap()) as usize;
        assert_eq!(&bytes[37..41], b"IDAT");
        let mut raw = Vec::new();
        flate2::read::ZlibDecoder::new(&bytes[41..41 + idat_len])
            .read_to_end(&mut raw)
            .unwrap();
        let row_bytes = side.div_ceil(8) + 1;
        let pixel_dark =
            |x: usize, y: usize| raw[y * row_bytes + 1 + x / 8] & (0x80 >> (x % 8)) == 0;
        let colors = code.to_colors();
        for my in 0..modules {
            for mx in 0..modules {
                let (x, y) = (
                    (mx + QUIET_ZONE) * PNG_SCALE + 3,
                    (my + QUIET_ZONE) * PNG_SCALE + 3,
                );
                assert_eq!(pixel_dark(x, y), colors[my * modules + mx] == Color::Dark);
            }
        }
        assert!(!pixel_dark(0, 0), "the quiet zone is white");
        let crc_at = 41 + idat_len;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&bytes[37..crc_at]);
        assert_eq!(bytes[crc_at..crc_at + 4], crc.finalize().to_be_bytes());
    }

    #[test]
    fn the_svg_is_a_document_of_dark_modules() {
        let svg = svg(PASS).unwrap();
        assert!(svg.starts_with("<?xml") && svg.contains("<svg"), "{svg}");
        assert!(svg.contains("<path"), "{svg}");
    }
}
