//! `trusted_proxies`: the addresses whose `X-Forwarded-For` is believed.

use serde::Deserializer;

/// One address or network (`10.0.0.0/8`; a bare address is itself alone).
fn parse(text: &str) -> Result<ipnet::IpNet, String> {
    if let Ok(net) = text.parse::<ipnet::IpNet>() {
        return Ok(net.trunc());
    }
    text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from).map_err(|_| {
        format!("trusted_proxies: `{text}` is not an address or a network; write 10.0.0.5, 10.0.0.0/8 or fd00::/8")
    })
}

/// A list, or one string holding a comma-separated list.
pub(super) fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    super::origins::items(d)?
        .iter()
        .map(|p| parse(p).map_err(serde::de::Error::custom))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn proxies_are_addresses_or_networks_in_a_list_or_one_string() {
        let load = |value: &str| {
            crate::config::Config::load(
                std::path::Path::new("/none"),
                vec![("STEWARD_TRUSTED_PROXIES".to_owned(), value.to_owned())],
            )
        };
        let proxies = load("10.0.0.0/8, 127.0.0.1,fd00::/8").unwrap().trusted_proxies;
        let shown: Vec<String> = proxies.iter().map(|p| p.to_string()).collect();
        assert_eq!(shown, ["10.0.0.0/8", "127.0.0.1/32", "fd00::/8"]);
        let refused = load("10.0.0.0/8, proxy.internal").unwrap_err().to_string();
        assert!(refused.contains("`proxy.internal` is not an address"), "{refused}");
    }
}
