/** The Worker names the node it verified in this header when it hands an agent's socket to its NodeObject. */
export const NODE_ID_HEADER = 'X-Llorch-Node-Id'
