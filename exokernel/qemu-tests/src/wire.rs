//! Frames made and read by hand, for tests that are a guest's whole
//! network (`run-qemu --net-udp`): Ethernet, ARP, IPv4, UDP, TCP and ICMP
//! with their checksums, and the two answers of a DHCP server. Written
//! from the RFCs (791, 768, 793, 792, 826, 2131), small and strict: a
//! test sends whatever bytes it likes with [`ethernet`], and reads only
//! what these parsers accept.

/// The guest's address, handed out by [`dhcp_answer`].
pub const GUEST_IP: [u8; 4] = [10, 0, 2, 15];
/// The test's address: DHCP server, router and peer.
pub const HOST_IP: [u8; 4] = [10, 0, 2, 2];
/// The test's MAC address.
pub const HOST_MAC: [u8; 6] = [0x52, 0x55, 0x0a, 0x00, 0x02, 0x02];

/// Ethernet types.
pub const IPV4: u16 = 0x0800;
/// See [`IPV4`].
pub const ARP: u16 = 0x0806;
/// IP protocols.
pub const ICMP: u8 = 1;
/// See [`ICMP`].
pub const TCP: u8 = 6;
/// See [`ICMP`].
pub const UDP: u8 = 17;

/// TCP flags.
pub const FIN: u8 = 0x01;
/// See [`FIN`].
pub const SYN: u8 = 0x02;
/// See [`FIN`].
pub const RST: u8 = 0x04;
/// See [`FIN`].
pub const PSH: u8 = 0x08;
/// See [`FIN`].
pub const ACK: u8 = 0x10;

/// The Internet checksum (RFC 1071) of `parts` one after the other, each
/// but the last of even length.
pub fn checksum(parts: &[&[u8]]) -> u16 {
    let mut acc = 0u64;
    for part in parts {
        for pair in part.chunks(2) {
            acc += u64::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
        }
    }
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// An Ethernet frame.
pub fn ethernet(dst: [u8; 6], src: [u8; 6], kind: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&kind.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IPv4 packet: no options, TTL 64, `fragment` the flags and offset
/// word (0: a whole packet, may be fragmented), the header checksum right.
pub fn ipv4(src: [u8; 4], dst: [u8; 4], protocol: u8, id: u16, fragment: u16, payload: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + payload.len()).expect("an IPv4 packet's length");
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&fragment.to_be_bytes());
    p.extend_from_slice(&[64, protocol, 0, 0]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    let sum = checksum(&[&p]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// The pseudo-header of a TCP or UDP checksum.
fn pseudo(src: [u8; 4], dst: [u8; 4], protocol: u8, len: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(12);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&[0, protocol]);
    p.extend_from_slice(&u16::try_from(len).expect("a segment's length").to_be_bytes());
    p
}

/// A UDP datagram, its checksum right.
pub fn udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let len = 8 + data.len();
    let mut d = Vec::with_capacity(len);
    d.extend_from_slice(&sport.to_be_bytes());
    d.extend_from_slice(&dport.to_be_bytes());
    d.extend_from_slice(&u16::try_from(len).expect("a datagram's length").to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(data);
    let sum = match checksum(&[&pseudo(src, dst, UDP, len), &d]) {
        0 => 0xffff,
        s => s,
    };
    d[6..8].copy_from_slice(&sum.to_be_bytes());
    d
}

/// A TCP segment to make.
#[derive(Clone, Debug, Default)]
pub struct Segment {
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Flags ([`SYN`] ...).
    pub flags: u8,
    /// Window.
    pub window: u16,
    /// Options, padded to four bytes here.
    pub options: Vec<u8>,
    /// Payload.
    pub data: Vec<u8>,
}

/// A TCP segment's bytes, its checksum right.
pub fn tcp(src: [u8; 4], dst: [u8; 4], s: &Segment) -> Vec<u8> {
    let mut options = s.options.clone();
    while !options.len().is_multiple_of(4) {
        options.push(0);
    }
    let header = 20 + options.len();
    let mut t = Vec::with_capacity(header + s.data.len());
    t.extend_from_slice(&s.sport.to_be_bytes());
    t.extend_from_slice(&s.dport.to_be_bytes());
    t.extend_from_slice(&s.seq.to_be_bytes());
    t.extend_from_slice(&s.ack.to_be_bytes());
    t.extend_from_slice(&[((header / 4) as u8) << 4, s.flags]);
    t.extend_from_slice(&s.window.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]);
    t.extend_from_slice(&options);
    t.extend_from_slice(&s.data);
    let sum = checksum(&[&pseudo(src, dst, TCP, t.len()), &t]);
    t[16..18].copy_from_slice(&sum.to_be_bytes());
    t
}

/// An ICMP echo request (or reply), its checksum right.
pub fn icmp_echo(request: bool, id: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let mut m = vec![if request { 8 } else { 0 }, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(data);
    let sum = checksum(&[&m]);
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    m
}

/// A received IPv4 packet that came whole: its sender's MAC, addresses,
/// protocol and payload (lengths checked, header checksum checked).
pub struct Packet<'a> {
    /// The Ethernet source.
    pub mac: [u8; 6],
    /// Source address.
    pub src: [u8; 4],
    /// Destination address.
    pub dst: [u8; 4],
    /// Protocol.
    pub protocol: u8,
    /// What follows the header, up to the total length.
    pub payload: &'a [u8],
}

/// The IPv4 packet of `frame`, if it is one, whole and well formed.
pub fn packet(frame: &[u8]) -> Option<Packet<'_>> {
    if frame.len() < 34 || frame[12..14] != IPV4.to_be_bytes() {
        return None;
    }
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff;
    if ip[0] >> 4 != 4 || ihl < 20 || total < ihl || total > ip.len() || fragment != 0 {
        return None;
    }
    if checksum(&[&ip[..ihl]]) != 0 {
        return None;
    }
    Some(Packet {
        mac: frame[6..12].try_into().ok()?,
        src: ip[12..16].try_into().ok()?,
        dst: ip[16..20].try_into().ok()?,
        protocol: ip[9],
        payload: &ip[ihl..total],
    })
}

/// A received UDP datagram: ports and data (length and checksum checked).
pub fn datagram<'a>(p: &Packet<'a>) -> Option<(u16, u16, &'a [u8])> {
    let d = p.payload;
    if p.protocol != UDP || d.len() < 8 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([d[4], d[5]]));
    if len < 8 || len > d.len() {
        return None;
    }
    let d = &d[..len];
    if d[6..8] != [0, 0] && checksum(&[&pseudo(p.src, p.dst, UDP, len), d]) != 0 {
        return None;
    }
    Some((u16::from_be_bytes([d[0], d[1]]), u16::from_be_bytes([d[2], d[3]]), &d[8..]))
}

/// A received TCP segment (checksum checked), its options left out.
pub fn segment(p: &Packet) -> Option<Segment> {
    let t = p.payload;
    if p.protocol != TCP || t.len() < 20 {
        return None;
    }
    let header = usize::from(t[12] >> 4) * 4;
    if header < 20 || header > t.len() || checksum(&[&pseudo(p.src, p.dst, TCP, t.len()), t]) != 0 {
        return None;
    }
    let word = |at: usize| u32::from_be_bytes(t[at..at + 4].try_into().expect("4 bytes"));
    Some(Segment {
        sport: u16::from_be_bytes([t[0], t[1]]),
        dport: u16::from_be_bytes([t[2], t[3]]),
        seq: word(4),
        ack: word(8),
        flags: t[13],
        window: u16::from_be_bytes([t[14], t[15]]),
        options: Vec::new(),
        data: t[header..].to_vec(),
    })
}

/// The answer to an ARP request for `ip` in `frame` (from `mac`), if it
/// is one.
pub fn arp_answer(frame: &[u8], ip: [u8; 4], mac: [u8; 6]) -> Option<Vec<u8>> {
    let a = frame.get(14..42)?;
    if frame[12..14] != ARP.to_be_bytes() || a[..8] != [0, 1, 8, 0, 6, 4, 0, 1] || a[24..28] != ip {
        return None;
    }
    let mut r = vec![0, 1, 8, 0, 6, 4, 0, 2];
    r.extend_from_slice(&mac);
    r.extend_from_slice(&ip);
    r.extend_from_slice(&a[8..18]); // the asker's MAC and address
    Some(ethernet(a[8..14].try_into().ok()?, mac, ARP, &r))
}

/// A DHCP server's answer to a DISCOVER (an OFFER) or a REQUEST (an ACK)
/// in `frame`, leasing [`GUEST_IP`] for an hour from [`HOST_IP`], which
/// is also the router; `None` for anything else.
pub fn dhcp_answer(frame: &[u8]) -> Option<Vec<u8>> {
    let p = packet(frame)?;
    let (68, 67, b) = datagram(&p)? else { return None };
    if b.len() < 240 || b[0] != 1 || b[236..240] != [99, 130, 83, 99] {
        return None;
    }
    // The message type among the options.
    let mut kind = None;
    let mut at = 240;
    while at < b.len() && b[at] != 255 {
        if b[at] == 0 {
            at += 1;
            continue;
        }
        let len = usize::from(*b.get(at + 1)?);
        if b[at] == 53 && len == 1 {
            kind = b.get(at + 2).copied();
        }
        at += 2 + len;
    }
    let answer = match kind? {
        1 => 2, // DISCOVER -> OFFER
        3 => 5, // REQUEST -> ACK
        _ => return None,
    };
    let mut r = vec![0u8; 240];
    r[0..4].copy_from_slice(&[2, 1, 6, 0]);
    r[4..8].copy_from_slice(&b[4..8]); // xid
    r[10..12].copy_from_slice(&b[10..12]); // flags
    r[16..20].copy_from_slice(&GUEST_IP); // yiaddr
    r[20..24].copy_from_slice(&HOST_IP); // siaddr
    r[28..44].copy_from_slice(&b[28..44]); // chaddr
    r[236..240].copy_from_slice(&[99, 130, 83, 99]);
    r.extend_from_slice(&[53, 1, answer, 54, 4]);
    r.extend_from_slice(&HOST_IP);
    r.extend_from_slice(&[51, 4, 0, 0, 0x0e, 0x10, 1, 4, 255, 255, 255, 0, 3, 4]);
    r.extend_from_slice(&HOST_IP);
    r.push(255);
    let broadcast = [255; 4];
    let d = udp(HOST_IP, broadcast, 67, 68, &r);
    Some(ethernet(p.mac, HOST_MAC, IPV4, &ipv4(HOST_IP, broadcast, UDP, 0, 0, &d)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_frames_parse_back_with_their_checksums_right() {
        let d = udp(HOST_IP, GUEST_IP, 1000, 7, b"odd length");
        let f = ethernet([2; 6], HOST_MAC, IPV4, &ipv4(HOST_IP, GUEST_IP, UDP, 7, 0, &d));
        let p = packet(&f).expect("a packet");
        assert_eq!((p.src, p.dst, p.mac), (HOST_IP, GUEST_IP, HOST_MAC));
        assert_eq!(datagram(&p), Some((1000, 7, &b"odd length"[..])));
        let s = Segment {
            sport: 5,
            dport: 7,
            seq: 9,
            ack: 11,
            flags: ACK | PSH,
            window: 100,
            data: b"abc".to_vec(),
            ..Default::default()
        };
        let f = ethernet([2; 6], HOST_MAC, IPV4, &ipv4(HOST_IP, GUEST_IP, TCP, 8, 0, &tcp(HOST_IP, GUEST_IP, &s)));
        let back = segment(&packet(&f).expect("a packet")).expect("a segment");
        assert_eq!((back.seq, back.ack, back.flags, back.window, back.data), (9, 11, ACK | PSH, 100, b"abc".to_vec()));
        // A flipped bit anywhere in the segment fails its checksum.
        let mut bad = f.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(segment(&packet(&bad).unwrap()).is_none());
        bad[16] ^= 1; // the IPv4 header too
        assert!(packet(&bad).is_none());
    }

    #[test]
    fn the_dhcp_server_offers_then_acknowledges() {
        let mut b = vec![0u8; 240];
        b[0] = 1;
        b[4..8].copy_from_slice(&[1, 2, 3, 4]);
        b[28..34].copy_from_slice(&[0x52, 0x54, 0, 0x12, 0x34, 0x56]);
        b[236..240].copy_from_slice(&[99, 130, 83, 99]);
        for (kind, answer) in [(1u8, 2u8), (3, 5)] {
            let mut m = b.clone();
            m.extend_from_slice(&[53, 1, kind, 255]);
            let d = udp([0; 4], [255; 4], 68, 67, &m);
            let f = ethernet([255; 6], [0x52, 0x54, 0, 0x12, 0x34, 0x56], IPV4, &ipv4([0; 4], [255; 4], UDP, 1, 0, &d));
            let r = dhcp_answer(&f).expect("an answer");
            let p = packet(&r).unwrap();
            let (67, 68, o) = datagram(&p).unwrap() else { panic!("ports") };
            assert_eq!((&o[4..8], &o[16..20], &o[240..243]), (&[1, 2, 3, 4][..], &GUEST_IP[..], &[53, 1, answer][..]));
        }
    }

    #[test]
    fn arp_requests_for_our_address_are_answered() {
        let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1, 2, 2, 2, 2, 2, 2];
        a.extend_from_slice(&GUEST_IP);
        a.extend_from_slice(&[0; 6]);
        a.extend_from_slice(&HOST_IP);
        let f = ethernet([255; 6], [2; 6], ARP, &a);
        let r = arp_answer(&f, HOST_IP, HOST_MAC).expect("an answer");
        assert_eq!(&r[..6], &[2; 6]);
        assert_eq!(&r[22..28], &HOST_MAC);
        assert_eq!(&r[38..42], &GUEST_IP);
        assert!(arp_answer(&f, [1, 2, 3, 4], HOST_MAC).is_none());
    }
}
