import type {
  IDataObject,
  IHookFunctions,
  ILoadOptionsFunctions,
  INodePropertyOptions,
  INodeType,
  INodeTypeDescription,
  IWebhookFunctions,
  IWebhookResponseData,
} from 'n8n-workflow';
import { NodeConnectionTypes, NodeOperationError } from 'n8n-workflow';
import { CATALOG_EVENTS, eventOptions, type CatalogEvent } from './event-catalog';
import { CREDENTIAL_NAME, sluiceRequest, unexpectedResponse } from './sluice-api';
import { verifyStandardWebhook } from './verify-signature';

/** What the trigger keeps in the workflow's static data between activation and deactivation. */
interface HookState extends IDataObject {
  hookId?: string;
  signingSecret?: string;
}

interface TriggerOptions {
  filter?: string;
  verifySignature?: boolean;
}

function hookPath(id: string): string {
  return `/api/v1/hooks/${encodeURIComponent(id)}`;
}

function forgetHook(state: HookState): void {
  delete state.hookId;
  delete state.signingSecret;
}

function webhookUrlOf(ctx: IHookFunctions): string {
  const url = ctx.getNodeWebhookUrl('default');
  if (!url) throw new NodeOperationError(ctx.getNode(), 'n8n gave this trigger no webhook URL');
  return url;
}

/** The raw request body as n8n read it: signatures are over these exact bytes, not re-serialized JSON. */
async function rawBodyOf(ctx: IWebhookFunctions): Promise<Buffer | undefined> {
  const req = ctx.getRequestObject() as unknown as { rawBody?: unknown; readRawBody?: () => Promise<void> };
  if (!Buffer.isBuffer(req.rawBody) && typeof req.readRawBody === 'function') await req.readRawBody();
  return Buffer.isBuffer(req.rawBody) ? req.rawBody : undefined;
}

export class SluiceTrigger implements INodeType {
  description: INodeTypeDescription = {
    displayName: 'Sluice Trigger',
    name: 'sluiceTrigger',
    icon: { light: 'file:../../icons/sluice.svg', dark: 'file:../../icons/sluice.dark.svg' },
    group: ['trigger'],
    // Version 2 emits {body, headers}; version 1 (workflows built before it) the body alone.
    version: [1, 2],
    defaultVersion: 2,
    subtitle: '={{($parameter["events"] || []).join(", ")}}',
    description: 'Starts the workflow when Sluice delivers one of the chosen events, signature verified',
    defaults: { name: 'Sluice Trigger' },
    inputs: [],
    outputs: [NodeConnectionTypes.Main],
    credentials: [{ name: CREDENTIAL_NAME, required: true }],
    webhooks: [{ name: 'default', httpMethod: 'POST', responseMode: 'onReceived', path: 'webhook' }],
    properties: [
      {
        displayName: 'Event Names or IDs',
        name: 'events',
        type: 'multiOptions',
        typeOptions: { loadOptionsMethod: 'getEventTypes' },
        default: [],
        required: true,
        description:
          'The Sluice events that start this workflow; * and family wildcards such as call.* are allowed. Choose from the list, or specify IDs using an <a href="https://docs.n8n.io/code/expressions/">expression</a>.',
      },
      {
        displayName: 'Options',
        name: 'options',
        type: 'collection',
        placeholder: 'Add Option',
        default: {},
        options: [
          {
            displayName: 'Filter',
            name: 'filter',
            type: 'string',
            default: '',
            placeholder: 'data.call.duration > 60',
            description: 'A JSONata predicate on the event: Sluice only delivers events for which it is true',
          },
          {
            displayName: 'Verify Signature',
            name: 'verifySignature',
            type: 'boolean',
            default: true,
            description:
              'Whether to check the Standard Webhooks signature of each call and answer 401 to any that is not from this Sluice hook. Only turn off to debug.',
          },
        ],
      },
    ],
  };

  methods = {
    loadOptions: {
      /** The live catalog from GET /api/v1/event-types; the shipped catalog if Sluice cannot be asked. */
      async getEventTypes(this: ILoadOptionsFunctions): Promise<INodePropertyOptions[]> {
        try {
          const response = await sluiceRequest(this, 'GET', '/api/v1/event-types');
          const data = (response.body as { data?: unknown } | null)?.data;
          if (response.statusCode === 200 && Array.isArray(data)) {
            const events = data
              .filter((e): e is CatalogEvent => typeof (e as CatalogEvent)?.name === 'string')
              .map((e) => ({ name: e.name, description: typeof e.description === 'string' ? e.description : '' }));
            if (events.length > 0) return eventOptions(events);
          }
        } catch {
          // No credentials yet or Sluice unreachable from the editor: offer the shipped catalog.
        }
        return eventOptions(CATALOG_EVENTS);
      },
    },
  };

  webhookMethods = {
    default: {
      /** True when the hook in static data still exists at Sluice and points at this node's URL. */
      async checkExists(this: IHookFunctions): Promise<boolean> {
        const state = this.getWorkflowStaticData('node') as HookState;
        if (typeof state.hookId !== 'string' || !state.hookId) return false;
        const response = await sluiceRequest(this, 'GET', hookPath(state.hookId));
        if (response.statusCode === 404) {
          forgetHook(state);
          return false;
        }
        if (response.statusCode !== 200) throw unexpectedResponse(this, `GET ${hookPath(state.hookId)}`, response);
        const hook = response.body as { target_url?: unknown } | null;
        const pointsHere = hook?.target_url === webhookUrlOf(this);
        const hasSecret = typeof state.signingSecret === 'string' && state.signingSecret !== '';
        if (pointsHere && hasSecret) return true;
        // A hook for another URL (n8n's base URL or path changed) would keep delivering there, and
        // one whose secret is lost could never be verified: delete it before create() replaces it.
        const deleted = await sluiceRequest(this, 'DELETE', hookPath(state.hookId));
        if (deleted.statusCode >= 300 && deleted.statusCode !== 404) throw unexpectedResponse(this, `DELETE ${hookPath(state.hookId)}`, deleted);
        forgetHook(state);
        return false;
      },

      /** Subscribes this node's webhook URL; keeps the hook id and signing secret in static data. */
      async create(this: IHookFunctions): Promise<boolean> {
        const events = this.getNodeParameter('events', []) as string[];
        if (!Array.isArray(events) || events.length === 0) {
          throw new NodeOperationError(this.getNode(), 'Choose at least one event for the Sluice Trigger');
        }
        const options = this.getNodeParameter('options', {}) as TriggerOptions;
        const body: Record<string, unknown> = { target_url: webhookUrlOf(this), events, connector: 'n8n' };
        if (options.filter?.trim()) body.filter = options.filter.trim();
        const response = await sluiceRequest(this, 'POST', '/api/v1/hooks', body);
        const hook = response.body as { id?: unknown; signing_secret?: unknown } | null;
        if (response.statusCode !== 200 && response.statusCode !== 201) throw unexpectedResponse(this, 'POST /api/v1/hooks', response);
        if (typeof hook?.id !== 'string' || typeof hook.signing_secret !== 'string') {
          throw new NodeOperationError(this.getNode(), 'Sluice created the hook but returned no id or signing_secret');
        }
        const state = this.getWorkflowStaticData('node') as HookState;
        state.hookId = hook.id;
        state.signingSecret = hook.signing_secret;
        return true;
      },

      /** Unsubscribes; a hook Sluice no longer knows (404) counts as deleted. */
      async delete(this: IHookFunctions): Promise<boolean> {
        const state = this.getWorkflowStaticData('node') as HookState;
        if (typeof state.hookId !== 'string' || !state.hookId) return true;
        const response = await sluiceRequest(this, 'DELETE', hookPath(state.hookId));
        if (response.statusCode >= 300 && response.statusCode !== 404) return false;
        forgetHook(state);
        return true;
      },
    },
  };

  async webhook(this: IWebhookFunctions): Promise<IWebhookResponseData> {
    const options = this.getNodeParameter('options', {}) as TriggerOptions;
    if (options.verifySignature !== false) {
      const state = this.getWorkflowStaticData('node') as HookState;
      const rawBody = await rawBodyOf(this);
      const result = rawBody
        ? verifyStandardWebhook({
            rawBody,
            headers: this.getHeaderData() as Record<string, string | string[] | undefined>,
            secret: typeof state.signingSecret === 'string' ? state.signingSecret : '',
            nowSeconds: Math.floor(Date.now() / 1000),
          })
        : { ok: false as const, reason: 'the raw request body is not available to verify' };
      if (!result.ok) {
        // n8n would answer a `webhookResponse` with the node's usual 200, so write the 401 here
        // and tell n8n the response is sent; no workflowData means no execution starts.
        this.getResponseObject()
          .status(401)
          .json({ error: { code: 'invalid_signature', message: result.reason } });
        return { noWebhookResponse: true };
      }
    }
    const body = this.getBodyData() as IDataObject | IDataObject[];
    if (this.getNode().typeVersion < 2) return { workflowData: [this.helpers.returnJsonArray(body)] };
    // The delivery's headers travel with each item: webhook-id is the same on every retry of a
    // delivery, so a workflow can deduplicate on it (x-webhook-event names the event).
    const headers = this.getHeaderData() as IDataObject;
    const items = (Array.isArray(body) ? body : [body]).map((element) => ({ body: element, headers }));
    return { workflowData: [this.helpers.returnJsonArray(items)] };
  }
}
