/** A message was stored in a conversation (the user's and the assistant's, each once, after the exchange commits). */
export const MESSAGE_ADDED = 'ai.messageAdded';
/** A piece of the assistant's reply as the provider streams it (sent at once, outside any transaction). */
export const MESSAGE_CHUNK = 'ai.messageChunk';

export interface MessageAddedEvent {
  messageId: string;
  conversationId: string;
  /** The conversation's owner: the only one who hears it. */
  userId: string;
}

/**
 * One chunk of a streamed reply. Chunks are small (a few tokens, at most
 * MAX_CHUNK_CHARS characters), far below PostgreSQL's 8 KB NOTIFY limit.
 */
export interface MessageChunkEvent {
  userId: string;
  conversationId: string;
  /** The id the assistant's message will have once stored (it is chosen before the call). */
  messageId: string;
  delta: string;
  /** 0, 1, 2, … in order; the last chunk has done = true (and usually an empty delta). */
  index: number;
  done: boolean;
  /** On the last chunk of a call that failed: its error code (the reply will not be stored). */
  error?: string | null;
}
