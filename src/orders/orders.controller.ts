import { Controller, HttpCode, Param, Post } from '@nestjs/common';
import { Exclusive } from '@app/distributed-lock';
import { PaymentsService } from './payments.service';

/** Payments: one at a time per order across all replicas; a concurrent duplicate gets 409. */
@Controller('orders')
export class OrdersController {
  constructor(private readonly payments: PaymentsService) {}

  @Post(':id/pay')
  @HttpCode(200)
  @Exclusive({ key: (id: string) => `order:${id}` })
  pay(@Param('id') id: string) {
    return this.payments.charge(id);
  }
}
