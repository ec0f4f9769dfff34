/** A provider turned unhealthy (after PROVIDER_UNHEALTHY_AFTER failed checks) or healthy again. To admins. */
export const PROVIDER_HEALTH_CHANGED = 'billing.providerHealthChanged';

export interface ProviderHealthChanged {
  providerId: string;
  isHealthy: boolean;
}

/** A provider or a user's provider key was created, changed or removed (caches of resolved providers forget). */
export const PROVIDERS_CHANGED = 'billing.providersChanged';
