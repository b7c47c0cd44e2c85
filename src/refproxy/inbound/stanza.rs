//! Stanzas on an inbound stream: refused before authentication, `from`
//! checked against the authenticated domains (RFC 6120 §8.1.2.1), then
//! handed to the local users (SPEC §7).

use super::{Inbound, Next};
use crate::refproxy::{local, policy};
use crate::xml::Element;

impl Inbound {
    pub(super) async fn stanza(&mut self, e: Element) -> Next {
        let unauthenticated = self.authenticated.is_empty();
        if unauthenticated && !policy::route_unauthenticated(self.faults()) {
            self.fail("not-authorized", "stanza before authentication")
                .await;
            return Next::Close;
        }
        let (Some(_), Some(from)) = (e.attr("to"), e.attr("from")) else {
            self.fail("improper-addressing", "stanza without `to` or `from`")
                .await;
            return Next::Close;
        };
        let from_domain = crate::stanza::domain_of(from);
        let from_ok = policy::from_accepted(
            self.authenticated.contains(&from_domain),
            unauthenticated,
            self.faults(),
        );
        if !from_ok {
            self.fail(
                "invalid-from",
                &format!("`{from_domain}` is not authenticated on this stream"),
            )
            .await;
            return Next::Close;
        }
        let stand_in = &self.settings.stand_in;
        let partner = policy::partner_for(
            &self.settings.partners.partners,
            &from_domain,
            self.faults(),
            stand_in,
        )
        .or(self.partner.as_ref())
        .cloned();
        if let Some(partner) = partner {
            local::handle_inbound(&self.shared, &self.settings, &partner, e);
        }
        Next::Continue
    }
}
