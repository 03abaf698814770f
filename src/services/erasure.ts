import { BadRequestError, ConflictError, NotFoundError } from '../errors.ts';
import { eventEnvelopeSchema } from '../core/api-schemas.ts';
import type { Storage } from '../storage/types.ts';

const EVENT_ID = new RegExp(eventEnvelopeSchema.properties.id.pattern);

export interface ErasedEvent {
  id: string;
  erased: true;
  /** Deliveries removed; `cancelled` of them had not been attempted to the end yet. */
  deliveries: number;
  cancelled: number;
  attempts: number;
}

/**
 * Erasure on request (a data subject's, or a leaked secret's): the event, every delivery of it
 * and every attempt with its bodies are deleted, not kept as tombstones, so every one of their
 * ids answers 404 afterwards. An event with an attempt on the wire is refused (409, Retry-After)
 * and left whole: never a half-deleted delivery.
 */
export class EventErasureService {
  /** `onWoken`: deliveries of ordered keys the erased event held, free to go now. */
  constructor(
    private readonly storage: Storage,
    private readonly onWoken: (deliveryIds: string[]) => void = () => undefined,
  ) {}

  async erase(id: string): Promise<ErasedEvent> {
    if (!EVENT_ID.test(id)) {
      throw new BadRequestError('invalid_path', 'This is not an event id: ids are 1 to 255 letters, digits and _ . : - starting with a letter or digit.', [
        { path: 'path:id', message: 'is not a valid event id' },
      ]);
    }
    const result = await this.storage.eraseEvent(id);
    if (result.outcome === 'not_found') throw new NotFoundError('Event', id);
    if (result.outcome === 'in_flight') {
      throw new ConflictError('event_in_flight', `An attempt of this event is being sent right now; nothing was erased. Try again in a few seconds.`, [
        { message: 'delivery in flight', delivery_ids: result.delivery_ids },
      ]).withHeaders({ 'Retry-After': '2' });
    }
    if (result.woken?.length) this.onWoken(result.woken);
    return { id, erased: true, deliveries: result.deliveries, cancelled: result.cancelled, attempts: result.attempts };
  }
}
