/**
 * The Sluice event catalog as shipped (catalog/events/ in the Sluice repository): the event
 * picker falls back to this list when the gateway cannot be asked (no credentials yet, or the
 * instance is unreachable from the editor). A test keeps it in step with the catalog.
 */
export interface CatalogEvent {
  name: string;
  description: string;
}

export const CATALOG_EVENTS: readonly CatalogEvent[] = [
  { name: 'agent.status_changed', description: "A voice assistant (or human agent) changed availability, e.g. went offline for a configuration update." },
  { name: 'audit.log.event', description: "An entry in the platform's audit log: who did what to which resource. Stream it to a SIEM or an archive." },
  { name: 'call.ended', description: "A call finished normally. Carries the outcome: duration, the variables the assistant extracted, transcript, recording and cost." },
  { name: 'call.failed', description: "A call could not be connected or dropped because of an error (carrier, SIP, assistant configuration)." },
  { name: 'call.qualified', description: "The assistant judged the caller a qualified lead against its qualification criteria (fires after call.ended, before any lead.created)." },
  { name: 'call.received', description: "An inbound call reached one of the platform's phone numbers and is ringing; no assistant has answered yet." },
  { name: 'call.started', description: "An assistant answered (inbound) or the callee picked up (outbound): the conversation has begun." },
  { name: 'evaluation.completed', description: "A QA evaluation of a conversation finished: the overall score and the score per rubric criterion." },
  { name: 'lead.created', description: "A new lead was created, usually from a qualified call; carries the contact fields a CRM needs." },
  { name: 'lead.updated', description: "A lead's fields changed. `lead` is the record after the change; `changes` holds each changed field's previous and new value." },
  { name: 'recording.ready', description: "The audio recording of a call has been processed and can be downloaded." },
  { name: 'review.received', description: "A customer posted a review, matched to the review request (and call) that asked for it when possible." },
  { name: 'review.requested', description: "After a call, the platform asked the customer for a public review (Google, Trustpilot...) by SMS or email." },
  { name: 'signal.disclosure_missed', description: "An agent did not give a required disclosure (recording consent, identity, terms) in a conversation: a compliance risk." },
  { name: 'signal.frustration_spike', description: "The customer's frustration rose sharply during a conversation; usually routed to a supervisor in Slack or PagerDuty." },
  { name: 'signal.product_qualified_lead', description: "Product analytics saw an account behave like a buyer (pricing visits, team invites, API keys): a product-qualified lead." },
  { name: 'signal.resolved', description: "An earlier signal is resolved (the customer calmed down, the disclosure was given in a follow-up, a reviewer dismissed it). Connectors use it to resolve the matching PagerDuty incident." },
  { name: 'sluice.delivery.failed', description: "Emitted by Sluice itself when a delivery runs out of attempts (or fails at once on a non-retryable 4xx). Subscribe to it to hear when a destination breaks. Not delivered to `*` subscriptions: name it or `sluice.*`." },
  { name: 'sluice.webhook.disabled', description: "Emitted by Sluice itself when it disables a subscription: the destination answered 410 Gone, or kept failing without a success for too long. Not delivered to `*` subscriptions: name it or `sluice.*`." },
  { name: 'transcript.available', description: "The final transcript of a call is ready (it can lag call.ended by a few seconds while post-call transcription runs)." },
];

export interface EventOption {
  name: string;
  value: string;
  description?: string;
}

/**
 * Picker options for a list of event types: `*` first, then a `<prefix>.*` wildcard for each
 * family of two or more events, then each event by name. Sluice matches `*` against every event
 * except its own `sluice.*` ones, which must be named (or `sluice.*`).
 */
export function eventOptions(events: readonly CatalogEvent[]): EventOption[] {
  const names = [...new Set(events.map((e) => e.name))].sort();
  const families = new Map<string, number>();
  for (const name of names) {
    const dot = name.indexOf('.');
    if (dot > 0) families.set(name.slice(0, dot), (families.get(name.slice(0, dot)) ?? 0) + 1);
  }
  const options: EventOption[] = [{ name: 'All Events (*)', value: '*', description: 'Every event except Sluice’s own sluice.* events' }];
  for (const [family, count] of [...families].sort(([a], [b]) => a.localeCompare(b))) {
    if (count >= 2) options.push({ name: `All ${family}.* Events`, value: `${family}.*`, description: `Every event whose name starts with "${family}."` });
  }
  const described = new Map(events.map((e) => [e.name, e.description]));
  for (const name of names) options.push({ name, value: name, description: described.get(name) || undefined });
  return options;
}
